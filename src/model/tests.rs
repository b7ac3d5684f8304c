use super::*;

#[test]
fn node_paths_are_absolute_and_clean() {
    assert_eq!(
        normalize_node_path("/DEFAULT/prod/").unwrap(),
        "/DEFAULT/prod"
    );
    for bad in ["DEFAULT", "/", "//x", "/a//b", "/a/../b", "/a/./b", ""] {
        assert!(normalize_node_path(bad).is_err(), "{bad} accepted");
    }
    assert_eq!(parent_node_path("/DEFAULT/prod"), Some("/DEFAULT"));
    assert_eq!(parent_node_path("/DEFAULT"), None);
}

#[test]
fn actions_all_never_includes_tunnel() {
    let all: Actions = "all".parse().unwrap();
    assert!(all.contains(Action::Connect));
    assert!(!all.contains(Action::Tunnel));
    let with: Actions = "all,tunnel".parse().unwrap();
    assert!(with.contains(Action::Tunnel));
    assert_eq!(
        "connect,upload".parse::<Actions>().unwrap().to_string(),
        "connect,upload"
    );
    assert!("fly".parse::<Actions>().is_err());
}

#[test]
fn account_specs_round_trip() {
    let spec: AccountSpec = "@INPUT,root,@USER".parse().unwrap();
    assert!(spec.input && spec.same_user && !spec.all);
    assert_eq!(spec.names, vec!["root"]);
    assert_eq!(spec.to_string(), "@INPUT,@USER,root");
    assert!("@SOME".parse::<AccountSpec>().is_err());
    assert!("".parse::<AccountSpec>().is_err());
}

#[test]
fn protocols_take_default_ports() {
    assert_eq!("ssh".parse::<Protocol>().unwrap().port, 22);
    assert_eq!("ssh/2200".parse::<Protocol>().unwrap().port, 2200);
    assert!("ssh/0".parse::<Protocol>().is_err());
    assert!("gopher/70".parse::<Protocol>().is_err());
    assert_eq!(
        "ssh,sftp".parse::<ProtocolSpec>().unwrap(),
        ProtocolSpec::Named(vec!["ssh".into(), "sftp".into()])
    );
}
