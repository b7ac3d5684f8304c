-- Web assets (protocol http or https): the site the bastion proxies to
-- (`asset add --url`), and how a web account is logged in with its
-- vaulted secret (`account add --web`: none, basic, header:NAME[=TEMPLATE],
-- form:PATH[;...]). Empty: not a web asset / `none`.
ALTER TABLE assets ADD COLUMN url TEXT NOT NULL DEFAULT '';
ALTER TABLE accounts ADD COLUMN web_login TEXT NOT NULL DEFAULT '';
