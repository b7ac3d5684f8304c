use super::*;

fn frame(bytes: &[u8]) -> Bytes {
    let mut f = Frames::default();
    let mut len = (bytes.len() as u32).to_be_bytes().to_vec();
    len.extend_from_slice(bytes);
    f.push(&len);
    f.next_packet().unwrap().unwrap()
}

fn request(op: Op, id: u32, fields: &[&[u8]], tail: &[u8]) -> Request {
    Request {
        id,
        op,
        fields: fields.iter().map(|f| Bytes::copy_from_slice(f)).collect(),
        tail: Bytes::copy_from_slice(tail),
    }
}

#[test]
fn requests_survive_encode_and_parse() {
    let mut write_tail = 7u64.to_be_bytes().to_vec();
    write_tail.extend_from_slice(&3u32.to_be_bytes());
    write_tail.extend_from_slice(b"abc");
    let cases = [
        request(Op::Open, 1, &[b"/etc/hosts"], &[0, 0, 0, 1, 0, 0, 0, 0]),
        request(
            Op::Read,
            2,
            &[b"h1"],
            &[0, 0, 0, 0, 0, 0, 0, 9, 0, 0, 128, 0],
        ),
        request(Op::Write, 3, &[b"h1"], &write_tail),
        request(Op::Rename, 4, &[b"/a", b"/b"], b""),
        request(
            Op::Extended(Extension::PosixRename),
            5,
            &[b"/a", b"/b"],
            b"",
        ),
        request(Op::Extended(Extension::Limits), 6, &[], b""),
        request(Op::Realpath, 7, &[b"."], b""),
    ];
    for case in cases {
        let mut out = BytesMut::new();
        case.encode(&mut out);
        let mut f = Frames::default();
        f.push(&out);
        let parsed = parse_client(f.next_packet().unwrap().unwrap()).unwrap();
        assert_eq!(parsed, ClientPacket::Request(case));
        assert_eq!(f.buffered(), 0);
    }
}

#[test]
fn write_and_read_arguments_are_read_back() {
    let mut tail = 1u64.to_be_bytes().to_vec();
    tail.extend_from_slice(&2u32.to_be_bytes());
    tail.extend_from_slice(b"hi");
    let r = request(Op::Write, 1, &[b"h"], &tail);
    assert_eq!(r.write_args().unwrap(), (1, Bytes::from_static(b"hi")));
    let r = request(Op::Read, 1, &[b"h"], &[0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 5]);
    assert_eq!(r.read_args().unwrap(), (256, 5));
}

#[test]
fn frames_wait_for_whole_packets_and_refuse_huge_lengths() {
    let mut f = Frames::default();
    f.push(&[0, 0, 0, 5, kind::INIT]);
    assert_eq!(f.next_packet().unwrap(), None);
    f.push(&[0, 0, 0, 3]);
    let p = f.next_packet().unwrap().unwrap();
    assert_eq!(parse_client(p).unwrap(), ClientPacket::Init { version: 3 });

    let mut f = Frames::default();
    f.push(&[0xff, 0xff, 0xff, 0xff]);
    assert_eq!(f.next_packet(), Err(WireError::TooLong(u32::MAX as usize)));
    let mut f = Frames::default();
    f.push(&[0, 0, 0, 0]);
    assert_eq!(f.next_packet(), Err(WireError::Empty));
}

#[test]
fn malformed_requests_are_errors() {
    // A READ without its length, an OPEN without flags, a string longer
    // than the packet, an unknown type.
    let mut read = vec![kind::READ, 0, 0, 0, 1, 0, 0, 0, 1, b'h'];
    read.extend_from_slice(&[0; 8]);
    assert_eq!(parse_client(frame(&read)), Err(WireError::Truncated));
    let open = [kind::OPEN, 0, 0, 0, 1, 0, 0, 0, 1, b'/'];
    assert_eq!(parse_client(frame(&open)), Err(WireError::Truncated));
    let long = [kind::STAT, 0, 0, 0, 1, 0xff, 0xff, 0xff, 0xff, b'/'];
    assert_eq!(parse_client(frame(&long)), Err(WireError::Truncated));
    assert_eq!(
        parse_client(frame(&[99, 0, 0, 0, 1])),
        Err(WireError::UnknownType(99))
    );
}

#[test]
fn unknown_extensions_are_recognised_as_such() {
    let mut p = vec![kind::EXTENDED, 0, 0, 0, 9];
    p.extend_from_slice(&(14u32).to_be_bytes());
    p.extend_from_slice(b"copy-data@evil");
    match parse_client(frame(&p)).unwrap() {
        ClientPacket::Request(r) => {
            assert_eq!(r.op, Op::UnknownExtended);
            assert_eq!(r.id, 9);
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn server_replies_are_split_and_read() {
    let mut out = BytesMut::new();
    encode_status(&mut out, 7, status::PERMISSION_DENIED, "no");
    encode_handle(&mut out, 8, b"H");
    encode_name(&mut out, 9, &[("/home/x", "/home/x", Attrs::directory())]);
    encode_version(&mut out, 3, &[(b"limits@openssh.com", b"1")]);
    let mut f = Frames::default();
    f.push(&out);
    let ServerPacket::Reply { code, id, body } =
        parse_server(f.next_packet().unwrap().unwrap()).unwrap()
    else {
        panic!()
    };
    assert_eq!((code, id), (kind::STATUS, 7));
    assert_eq!(
        status_of(&body).unwrap(),
        (status::PERMISSION_DENIED, "no".into())
    );
    let ServerPacket::Reply { body, .. } = parse_server(f.next_packet().unwrap().unwrap()).unwrap()
    else {
        panic!()
    };
    assert_eq!(&first_string(&body).unwrap()[..], b"H");
    let ServerPacket::Reply { body, .. } = parse_server(f.next_packet().unwrap().unwrap()).unwrap()
    else {
        panic!()
    };
    let (count, name, _) = first_name(&body).unwrap();
    assert_eq!((count, &name[..]), (1, &b"/home/x"[..]));
    let version = parse_server(f.next_packet().unwrap().unwrap()).unwrap();
    assert_eq!(
        version,
        ServerPacket::Version {
            version: 3,
            extensions: vec![(
                Bytes::from_static(b"limits@openssh.com"),
                Bytes::from_static(b"1")
            )]
        }
    );
}

#[test]
fn arbitrary_bytes_never_panic() {
    // xorshift: a fixed sequence of pseudo-random packets.
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut next = || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    for _ in 0..20_000 {
        let len = (next() % 64) as usize;
        let mut bytes: Vec<u8> = (0..len).map(|_| next() as u8).collect();
        if let Some(b) = bytes.first_mut() {
            // Mostly valid types, so the field parsers are reached.
            *b = [3, 4, 5, 6, 16, 18, 20, 200, 101, 102, 103, 104, 2, 1][*b as usize % 14];
        }
        let p = Bytes::from(bytes);
        let _ = parse_client(p.clone());
        if let Ok(ServerPacket::Reply { body, .. }) = parse_server(p) {
            let _ = status_of(&body);
            let _ = first_name(&body);
            let _ = first_string(&body);
        }
    }
}
