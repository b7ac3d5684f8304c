#!/usr/bin/env python3
"""Writes the seed corpora of the fuzz targets into seeds/<target>/.

cargo fuzz run TARGET fuzz/seeds/TARGET  (from fuzz/) starts from these; the
corpus libFuzzer grows goes to corpus/TARGET (not committed).
"""
import os, struct, zipfile, io

HERE = os.path.dirname(os.path.abspath(__file__))


def put(target, name, data):
    d = os.path.join(HERE, target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "wb") as f:
        f.write(data if isinstance(data, bytes) else data.encode())


put("route", "exec", "alice\0web1 uname -a")
put("route", "account", "alice@root@web1\0scp -t /tmp")
put("route", "admin", "bob\0rampart user list --json")
put("route", "quoted", "alice\0root@web1 'echo \"a b\"' \\\\ x")

put("input", "arrows", "\x1b[A\x1b[B\x1b[C\x1b[D\x1bOA")
put("input", "paste", "\x1b[200~pasted text\r\x1b[201~")
put("input", "mouse", "\x1b[<0;10;5M\x1b[<0;10;5m")
put("input", "keys", "abc\x7f\x15\x03\x1b\r\t\x1b[5~\x1b[1;5C")

put("asciicast", "cast", '{"version": 2, "width": 80, "height": 24, "timestamp": 1700000000}\n'
    '[0.1, "o", "hello\\r\\n"]\n[0.2, "i", "ls\\r"]\n[0.3, "r", "100x30"]\n[0.4, "m", "cmd: ls"]\n')

put("import_csv", "assets.csv", "name,address,protocols,nodes,platform,active,comment\n"
    "web1,10.0.0.1,ssh/22,/prod/web,linux,true,front\n\"db 1\",10.0.0.2,\"ssh/22 postgresql/5432\",,,0,\n")
put("import_csv", "users.csv", "name,role,email,groups,key\nalice,user,a@example.com,ops,\nbob,auditor,,,\n")

MAIN = "http://schemas.openxmlformats.org/spreadsheetml/2006/main"
REL = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"
PKG = "http://schemas.openxmlformats.org/package/2006/relationships"
sheet = (f'<worksheet xmlns="{MAIN}"><sheetData>'
         '<row r="1"><c r="A1" t="inlineStr"><is><t>name</t></is></c><c r="B1" t="inlineStr"><is><t>address</t></is></c>'
         '<c r="C1" t="inlineStr"><is><t>protocols</t></is></c></row>'
         '<row r="2"><c r="A2" t="inlineStr"><is><t>web1</t></is></c><c r="B2" t="inlineStr"><is><t>10.0.0.1</t></is></c>'
         '<c r="C2" t="inlineStr"><is><t>ssh/22</t></is></c></row>'
         '</sheetData></worksheet>')
parts = {
    "[Content_Types].xml": '<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
    '<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/>'
    '<Default Extension="xml" ContentType="application/xml"/>'
    '<Override PartName="/xl/workbook.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml"/>'
    '<Override PartName="/xl/worksheets/sheet1.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.worksheet+xml"/>'
    '</Types>',
    "_rels/.rels": f'<Relationships xmlns="{PKG}"><Relationship Id="rId1" Type="{REL}/officeDocument" Target="xl/workbook.xml"/></Relationships>',
    "xl/workbook.xml": f'<workbook xmlns="{MAIN}" xmlns:r="{REL}"><sheets><sheet name="Assets" sheetId="1" r:id="rId1"/></sheets></workbook>',
    "xl/_rels/workbook.xml.rels": f'<Relationships xmlns="{PKG}"><Relationship Id="rId1" Type="{REL}/worksheet" Target="worksheets/sheet1.xml"/></Relationships>',
    "xl/worksheets/sheet1.xml": sheet,
}
buf = io.BytesIO()
with zipfile.ZipFile(buf, "w", zipfile.ZIP_STORED) as z:
    for name, text in parts.items():
        z.writestr(name, text)
put("import_xlsx", "book.xlsx", buf.getvalue())

with open(os.path.join(HERE, "..", "..", "contrib", "rampart.toml")) as f:
    put("config", "contrib.toml", f.read())
put("config", "small.toml", 'data_dir = "/var/lib/rampart"\n[ssh]\nlisten = ["127.0.0.1:2222"]\nidle_timeout = "30m"\n[recording]\nkeep_files = true\nkeep_files_max_size = "10MiB"\n')


def packet(body):
    return struct.pack(">I", len(body)) + body


def string(b):
    return struct.pack(">I", len(b)) + b


init = packet(b"\x01" + struct.pack(">I", 3))
opn = packet(b"\x03" + struct.pack(">I", 1) + string(b"/web1/root/etc/hosts") + struct.pack(">I", 1) + struct.pack(">I", 0))
read = packet(b"\x05" + struct.pack(">I", 2) + string(b"\0\0\0\1") + struct.pack(">QI", 0, 32768))
write = packet(b"\x06" + struct.pack(">I", 3) + string(b"\0\0\0\1") + struct.pack(">Q", 0) + string(b"data"))
rename = packet(b"\xc8" + struct.pack(">I", 4) + string(b"posix-rename@openssh.com") + string(b"/a/b/x") + string(b"/a/b/y"))
status = packet(b"\x65" + struct.pack(">II", 1, 0) + string(b"ok") + string(b"en"))
name = packet(b"\x68" + struct.pack(">II", 5, 1) + string(b"/root") + string(b"/root") + struct.pack(">I", 0))
version = packet(b"\x02" + struct.pack(">I", 3) + string(b"limits@openssh.com") + string(b"1"))
put("sftp_wire", "client", init + opn + read + write + rename)
put("sftp_wire", "server", version + status + name)

put("scp", "file", "C0644 5 a.txt\nhello\0")
put("scp", "tree", "T1700000000 0 1700000000 0\nD0755 0 d\nC0644 1 x\nx\0E\nC0600 0 empty\n\0")
put("scp", "command", "scp -r -d -t -- '/srv/my dir'")

# RDP frames as the relay sees them (after TLS): an X.224 connection
# request, MCS send-data requests on the I/O channel (1003) carrying a Client
# Info PDU head and a Confirm Active with one General capability set, one on
# a virtual channel (1004), and fast-path output.
def tpkt_data(payload):
    body = b"\x02\xf0\x80" + payload
    return b"\x03\x00" + struct.pack(">H", 4 + len(body)) + body

def send_data(channel, user_data):
    return tpkt_data(b"\x64" + struct.pack(">HH", 1007 - 1001, channel) + b"\x70"
                     + bytes([0x80 | (len(user_data) >> 8), len(user_data) & 0xff]) + user_data)

x224_request = b"\x03\x00\x00\x13\x0e\xe0\x00\x00\x00\x00\x00\x01\x00\x08\x00\x03\x00\x00\x00"
client_info = struct.pack("<HH", 0x0040, 0) + struct.pack("<II", 0, 0x00000013) + b"\0" * 18
general = struct.pack("<HH", 1, 24) + struct.pack("<HHHHHHHBB", 1, 3, 0x200, 0, 0, 0x041d, 0, 0, 0)
caps = struct.pack("<HH", 1, 0) + general
confirm = b"MSTSC\0"
confirm_body = struct.pack("<IHHH", 0x103ea, 1002, len(confirm), len(caps)) + confirm + caps
confirm_active = struct.pack("<HHH", 6 + len(confirm_body), 0x13, 1007) + confirm_body
fast_path = b"\x00\x08\x00\x00\x00\x00\x00\x00"
put("rdp", "client", x224_request + send_data(1003, client_info) + send_data(1003, confirm_active))
put("rdp", "server", send_data(1004, b"\x0a\x00\x00\x00\x10\x00\x00\x00" + b"\0" * 8) + fast_path)

# PostgreSQL protocol 3.0 as the database proxy sees it: a client's startup
# packet then a pipelined extended batch and a simple query with quotes,
# dollar quotes and comments; a server's answers (auth, parameters, rows,
# an error, ReadyForQuery).
def pg(tag, body):
    return tag + struct.pack(">I", 4 + len(body)) + body

def pg_startup(params):
    body = struct.pack(">I", 3 << 16) + b"".join(k + b"\0" + v + b"\0" for k, v in params) + b"\0"
    return struct.pack(">I", 4 + len(body)) + body

put("pg_wire", "client", pg_startup([(b"user", b"app"), (b"database", b"appdb")])
    + pg(b"p", b"one-time\0")
    + pg(b"P", b"s1\0SELECT $1::int\0\0\x01\0\0\0\x17")
    + pg(b"B", b"\0s1\0\0\0\0\x01\0\0\0\x0242\0\0") + pg(b"E", b"\0\0\0\0\0")
    + pg(b"D", b"Ss1\0") + pg(b"C", b"Ss1\0") + pg(b"S", b"")
    + pg(b"Q", b"select 'a;b', E'\\'', $x$ ; $x$ -- c;\n; /* /* ; */ */ drop table t\0")
    + pg(b"d", b"1\t2\n") + pg(b"c", b"") + pg(b"X", b""))
put("pg_wire", "server", pg(b"R", struct.pack(">I", 10) + b"SCRAM-SHA-256-PLUS\0SCRAM-SHA-256\0\0")
    + pg(b"R", struct.pack(">I", 5) + b"salt") + pg(b"R", struct.pack(">I", 0))
    + pg(b"S", b"client_encoding\0UTF8\0") + pg(b"K", b"\0\0\0\x2a\x01\x02\x03\x04")
    + pg(b"Z", b"I") + pg(b"1", b"") + pg(b"2", b"")
    + pg(b"T", b"\0\x01n\0\0\0\0\0\0\x01\0\0\0\x17\0\x04\xff\xff\xff\xff\0\0")
    + pg(b"D", b"\0\x01\0\0\0\x0242") + pg(b"C", b"SELECT 1\0")
    + pg(b"E", b"SERROR\0VERROR\0C42P01\0Mrelation \"t\" does not exist\0\0")
    + pg(b"Z", b"T"))

# RESP as the Redis proxy sees it: a client's pipelined commands (arrays of
# bulk strings with binary and quoted arguments, AUTH, MULTI/EXEC, an
# inline command with quotes and escapes); a server's replies of every
# RESP2 and RESP3 type, nested, with nulls, an attribute and a push.
def resp(*words):
    out = b"*%d\r\n" % len(words)
    for w in words:
        out += b"$%d\r\n%s\r\n" % (len(w), w)
    return out

put("redis_wire", "client", resp(b"AUTH", b"app", b"secret") + resp(b"SET", b"a b", b"\0\xff\r\n")
    + resp(b"MULTI") + resp(b"INCR", b"n") + resp(b"EXEC") + b"*0\r\n"
    + resp(b"HELLO", b"3", b"AUTH", b"u", b"p") + resp(b"ACL", b"SETUSER", b"bob", b">pw")
    + b"GET \"k\\x41\\n\" 'it\\'s'\r\n\r\n" + resp(b"QUIT"))
put("redis_wire", "server", b"+OK\r\n-ERR no\r\n:-42\r\n$5\r\nhello\r\n$-1\r\n*-1\r\n*0\r\n"
    + b"*3\r\n$1\r\na\r\n*2\r\n:1\r\n*0\r\n+x\r\n_\r\n,3.14\r\n#t\r\n(12345678901234567890123\r\n"
    + b"!9\r\nSYNTAX no\r\n=7\r\ntxt:abc\r\n%1\r\n+k\r\n:1\r\n~2\r\n:1\r\n:2\r\n"
    + b"|1\r\n+ttl\r\n:9\r\n$1\r\nv\r\n>2\r\n$10\r\ninvalidate\r\n*1\r\n$1\r\nk\r\n")

# MySQL's classic protocol as the database proxy sees it: a client's
# handshake response, then a query with backquotes, versioned and `#`
# comments and backslash escapes, a prepare, an execute and a quit; a
# server's answers (MariaDB 10.11's greeting, an OK, a result set closed by
# an EOF, an ERR, a prepare's OK with its definitions).
def my(seq, payload):
    return struct.pack("<I", len(payload))[:3] + bytes([seq]) + payload

column = b"\x03def\x05appdb\x01t\x01t\x01n\x01n\x0c\x3f\x00\x0b\x00\x00\x00\x03\x00\x00\x00\x00\x00"
eof = b"\xfe\x00\x00\x02\x00"
response = (struct.pack("<IIB", 0x000aa209, 1 << 24, 33) + b"\0" * 23 + b"app\0" + b"\x14" + bytes(range(20))
            + b"appdb\0mysql_native_password\0")
put("mysql_wire", "client", my(1, response)
    + my(0, b"\x03select `a;b`, 'it\\'s', \"q\" /*!40101 x */ # c;\n; /*M!100000 drop table t */ select 1--1")
    + my(0, b"\x16SELECT ? + 1") + my(0, b"\x17\x01\x00\x00\x00\x00\x01\x00\x00\x00\x00\x01\x08\x00" + struct.pack("<q", 41))
    + my(0, b"\x01"))
greeting = bytes.fromhex("0a352e352e352d31302e31312e31342d4d6172696144422d302b646562313275322d6c6f6700050000003c2235265b7a724e00fef7080200ff81150000000000001d0000006e5e6b7e5b2d6a523a6b2f46006d7973716c5f6e61746976655f70617373776f726400")
put("mysql_wire", "server", my(0, greeting) + my(2, b"\x00\x00\x00\x02\x00\x00\x00")
    + my(1, b"\x01") + my(2, column) + my(3, eof) + my(4, b"\x013") + my(5, eof)
    + my(1, b"\xff\x7a\x04#42S02Table 'appdb.x' doesn't exist")
    + my(1, b"\x00\x07\x00\x00\x00\x01\x00\x01\x00\x00\x00\x00") + my(2, column) + my(3, eof) + my(4, column) + my(5, eof))

