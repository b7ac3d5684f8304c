//! The MySQL wire format as the database proxy reads it: any byte stream
//! framed (fed in uneven pieces, as reads deliver it), every packet
//! through the parsers of both directions (the client's handshake response
//! and commands; the server's greeting, OK, ERR, EOF, auth switch and
//! prepare answers), the server's packets through the reply parser as the
//! answer to each kind of command, and the statement splitter the rules
//! rely on (with the sqlparser reading of nested statements), under every
//! server it knows.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rampart::db::mysql::sql::{self, MySqlServer};
use rampart::db::mysql::track::{Kind, Reply};
use rampart::db::mysql::wire;

const SERVERS: [Option<MySqlServer>; 3] = [
    None,
    Some(MySqlServer {
        mariadb: true,
        version: 101114,
    }),
    Some(MySqlServer {
        mariadb: false,
        version: 80036,
    }),
];

fn client(head: &wire::Head) {
    let _ = wire::response(head.bytes.clone());
    let _ = wire::statement_id(&head.bytes);
    if let Some((&command, text)) = head.bytes.split_first()
        && (command == wire::com::QUERY || command == wire::com::STMT_PREPARE)
    {
        let _ = sql::split_mysql(text, SERVERS[1]);
    }
}

fn server(head: &wire::Head) {
    let bytes = &head.bytes;
    if let Ok(g) = wire::greeting(bytes.clone()) {
        let _ = MySqlServer::from_version(&g.version);
    }
    if let Ok(e) = wire::error(bytes.clone()) {
        let _ = e.line();
    }
    if let Ok(ok) = wire::ok(bytes.clone()) {
        let _ = ok.line();
    }
    let _ = wire::eof_status(bytes.clone());
    let _ = wire::prepared(bytes.clone());
    let _ = wire::auth_switch(bytes.clone());
    let _ = wire::column_count(bytes.clone());
}

fuzz_target!(|data: &[u8]| {
    let mut decoder = wire::Decoder::new();
    let mut replies: Vec<Reply> = [
        Kind::Results,
        Kind::Prepare,
        Kind::Fetch,
        Kind::Fields,
        Kind::One,
    ]
    .into_iter()
    .map(|kind| Reply::new(kind, 0, None))
    .collect();
    for piece in data.chunks(7) {
        decoder.push(piece);
        while let Some(frame) = decoder.next_frame() {
            let wire::Frame::Head(head) = frame else {
                continue;
            };
            client(&head);
            server(&head);
            for reply in &mut replies {
                let _ = reply.packet(&head);
            }
        }
    }
    for server in SERVERS {
        let _ = sql::split_mysql(data, server);
        let _ = sql::normalise_mysql(data, server);
    }
});
