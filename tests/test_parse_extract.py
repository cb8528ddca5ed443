"""Message extractors (soc.ingest.extract): actions, outcomes and user/source fields."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

import soc.ingest.extract as extract_pkg
from soc.ingest.extract import EXTRACTORS, extract

ECS_CATEGORIES = {"authentication", "iam", "session", "process", "network", "web", "intrusion_detection", "file", "configuration", "host"}
ECS_TYPES = {"start", "end", "info", "creation", "deletion", "change", "user", "group", "connection", "denied", "allowed", "access", "error", "protocol"}


def run(program: str, message: str) -> dict:
    fields: dict = {}
    extract(program, message, fields)
    return fields


@pytest.mark.parametrize(
    "message,expected",
    [
        ("Accepted publickey for ubuntu from 1.2.3.4 port 52 ssh2: RSA SHA256:abc",
         {"event.action": "ssh_login", "event.outcome": "success", "user.name": "ubuntu", "source.ip": "1.2.3.4", "source.port": 52, "sshd.method": "publickey", "sshd.signature": "RSA SHA256:abc"}),
        ("Accepted keyboard-interactive/pam for admin from 2001:db8::1 port 22 ssh2",
         {"event.action": "ssh_login", "source.ip": "2001:db8::1", "sshd.method": "keyboard-interactive/pam"}),
        ("Failed password for invalid user  from 5.6.7.8 port 4444 ssh2",
         {"event.action": "ssh_login", "event.outcome": "failure", "sshd.invalid_user": True, "source.ip": "5.6.7.8"}),
        ("Failed publickey for root from 9.9.9.9 port 1 ssh2", {"event.action": "ssh_login", "event.outcome": "failure", "user.name": "root"}),
        ("Invalid user oracle from 10.0.0.1 port 5000", {"event.action": "ssh_invalid_user", "user.name": "oracle", "source.port": 5000}),
        ("Disconnected from authenticating user root 1.1.1.1 port 22 [preauth]",
         {"event.action": "ssh_disconnect", "user.name": "root", "sshd.preauth": True, "event.outcome": "unknown"}),
        ("Received disconnect from 1.1.1.1 port 22:11: disconnected by user", {"event.action": "ssh_disconnect", "sshd.disconnect_code": 11}),
        ("Received disconnect from 103.99.0.122: 11: Bye Bye [preauth]", {"event.action": "ssh_disconnect", "source.ip": "103.99.0.122"}),
        ("Connection closed by invalid user admin 4.4.4.4 port 1000 [preauth]", {"event.action": "ssh_disconnect", "user.name": "admin", "sshd.invalid_user": True}),
        ("Connection from 4.4.4.4 port 1000 on 10.0.0.2 port 22 rdomain \"\"", {"event.action": "ssh_connection", "destination.ip": "10.0.0.2", "destination.port": 22}),
        ("error: maximum authentication attempts exceeded for root from 3.3.3.3 port 3 ssh2 [preauth]",
         {"event.action": "ssh_max_auth_attempts", "event.outcome": "failure", "user.name": "root"}),
        ("Disconnecting: Too many authentication failures [preauth]", {"event.action": "ssh_max_auth_attempts"}),
        ("reverse mapping checking getaddrinfo for x.example.com [173.234.31.186] failed - POSSIBLE BREAK-IN ATTEMPT!",
         {"event.action": "ssh_possible_break_in", "source.ip": "173.234.31.186", "source.domain": "x.example.com"}),
        ("Did not receive identification string from 1.2.3.4", {"event.action": "ssh_no_identification", "source.ip": "1.2.3.4"}),
        ("Bad protocol version identification 'GET / HTTP/1.1' from 1.2.3.4 port 9", {"event.action": "ssh_bad_protocol", "sshd.reason": "GET / HTTP/1.1"}),
        ("error: PAM: Authentication failure for illegal user x from 8.8.8.8", {"event.action": "authentication_failure", "user.name": "x", "source.ip": "8.8.8.8"}),
        ("fatal: Unable to negotiate with 1.2.3.4 port 5: no matching cipher found", {"event.action": "ssh_negotiation_failed", "source.port": 5}),
        ("fatal: Read from socket failed: Connection reset by peer [preauth]", {"event.action": "ssh_fatal", "event.outcome": "failure"}),
        ("User root from 192.168.33.1 not allowed because not listed in AllowUsers", {"event.action": "ssh_user_not_allowed", "user.name": "root"}),
        ("pam_unix(sshd:session): session opened for user bob(uid=1000) by (uid=0)",
         {"event.action": "session_opened", "user.name": "bob", "pam.service": "sshd", "pam.by_uid": "0"}),
        ("pam_unix(sshd:session): session closed for user bob", {"event.action": "session_closed", "event.type": ["end"]}),
        ("PAM 2 more authentication failures; logname= uid=0 euid=0 tty=ssh ruser= rhost=1.2.3.4  user=root",
         {"event.action": "authentication_failures_repeated", "pam.more_failures": 2, "source.ip": "1.2.3.4"}),
        ("Read error from remote host 192.168.1.1: Connection reset by peer", {"source.ip": "192.168.1.1"}),
    ],
)
def test_sshd(message: str, expected: dict) -> None:
    fields = run("sshd", message)
    for key, value in expected.items():
        assert fields.get(key) == value, (key, fields)


def test_sshd_masked_address_is_not_an_ip() -> None:
    fields = run("sshd", "error: maximum authentication attempts exceeded for root from 183.106.179.x port 34100 ssh2 [preauth]")
    assert "source.ip" not in fields and fields["source.address"] == "183.106.179.x"


@pytest.mark.parametrize(
    "program,message,expected",
    [
        ("sudo", "  alice : TTY=pts/0 ; PWD=/home/alice ; USER=root ; COMMAND=/usr/bin/id -u",
         {"event.action": "sudo_command", "user.name": "alice", "user.effective.name": "root", "user.target.name": "root",
          "process.command_line": "/usr/bin/id -u", "process.executable": "/usr/bin/id", "process.working_directory": "/home/alice"}),
        ("sudo", "bob : TTY=unknown ; PWD=/ ; USER=postgres ; GROUP=postgres ; ENV=A=1 ; COMMAND=/bin/ls",
         {"event.action": "sudo_command", "user.effective.name": "postgres", "user.effective.group.name": "postgres"}),
        ("sudo", "eve : command not allowed ; TTY=pts/1 ; PWD=/ ; USER=root ; COMMAND=/bin/sh",
         {"event.action": "sudo_command_denied", "event.outcome": "failure"}),
        ("sudo", "pam_unix(sudo:auth): authentication failure; logname=eve uid=1001 euid=0 tty=/dev/pts/1 ruser=eve rhost=  user=eve",
         {"event.action": "authentication_failure", "user.name": "eve", "user.target.name": "eve"}),
        ("sudo", "pam_unix(sudo:session): session opened for user root by ubuntu(uid=0)",
         {"event.action": "session_opened", "user.name": "ubuntu", "user.target.name": "root"}),
        ("su", "(to root) alice on pts/0", {"event.action": "su", "event.outcome": "success", "user.name": "alice", "user.target.name": "root", "su.tty": "pts/0"}),
        ("su", "FAILED SU (to root) alice on pts/0", {"event.action": "su", "event.outcome": "failure"}),
        ("su", "Successful su for root by ubuntu", {"event.action": "su", "user.name": "ubuntu", "user.effective.name": "root"}),
        ("su", "+ /dev/pts/0 ubuntu:root", {"event.action": "su", "event.outcome": "success"}),
        ("su", "- /dev/pts/0 ubuntu:root", {"event.action": "su", "event.outcome": "failure"}),
        ("su", "pam_unix(su:auth): authentication failure; logname=alice uid=1000 euid=0 tty=pts/0 ruser=alice rhost=  user=root",
         {"event.action": "authentication_failure", "user.name": "alice", "user.target.name": "root"}),
        ("useradd", "new user: name=bob, UID=1001, GID=1001, home=/home/bob, shell=/bin/bash, from=/dev/pts/0",
         {"event.action": "user_created", "user.target.name": "bob", "user.target.id": "1001", "account.shell": "/bin/bash"}),
        ("useradd", "new group: name=bob, GID=1001", {"event.action": "group_created", "group.name": "bob", "group.id": "1001"}),
        ("useradd", "add 'bob' to group 'sudo'", {"event.action": "user_added_to_group", "group.name": "sudo", "user.target.name": "bob"}),
        ("useradd", "add 'bob' to shadow group 'sudo'", {"group.name": "sudo", "event.action": None}),
        ("usermod", "add 'bob' to group 'wheel'", {"event.action": "user_added_to_group"}),
        ("usermod", "change user name 'bob' to 'robert'", {"event.action": "user_renamed", "user.changes.name": "robert"}),
        ("usermod", "change user 'bob' shell from '/bin/sh' to '/bin/bash'", {"event.action": "user_modified", "user.target.name": "bob"}),
        ("usermod", "lock user 'bob' password", {"event.action": "user_modified", "account.change": "lock password"}),
        ("userdel", "delete user 'bob'", {"event.action": "user_deleted", "event.type": ["user", "deletion"]}),
        ("userdel", "removed group 'bob' owned by 'bob'", {"event.action": "group_deleted"}),
        ("groupdel", "group 'devs' removed", {"event.action": "group_deleted", "group.name": "devs"}),
        ("groupdel", "group 'devs' removed from /etc/group", {"event.action": None, "group.name": "devs"}),
        ("groupadd", "group added to /etc/group: name=devs, GID=1002", {"event.action": None, "group.name": "devs"}),
        ("passwd", "pam_unix(passwd:chauthtok): password changed for bob", {"event.action": "password_changed", "user.target.name": "bob"}),
        ("passwd", "password for 'bob' changed by 'root'", {"event.action": "password_changed", "user.name": "root"}),
        ("gpasswd", "user bob added by root to group docker", {"event.action": "user_added_to_group", "group.name": "docker", "user.name": "root"}),
        ("gpasswd", "members of group docker set by root to bob,alice", {"event.action": "group_modified"}),
        ("chpasswd", 'pam_unix(chpasswd:chauthtok): user "ghost" does not exist in /etc/passwd', {"event.action": "user_unknown", "user.name": "ghost"}),
        ("vsftpd(pam_unix)", "check pass; user unknown", {"event.action": "user_unknown", "event.outcome": "failure"}),
        ("doas", "ddp ran command /bin/ksh as root from /data", {"event.action": "sudo_command", "user.target.name": "root"}),
        ("dropbear", "Password auth succeeded for 'root' from 10.10.10.241:51737", {"event.action": "ssh_login", "event.outcome": "success", "source.port": 51737}),
        ("kernel", "[ 123.456] DROP IN=eth0 OUT= SRC=1.2.3.4 DST=5.6.7.8 LEN=40 PROTO=TCP SPT=1 DPT=22 SYN",
         {"event.action": "firewall_packet", "event.type": ["connection", "denied"], "iptables.flags": ["SYN"], "event.dataset": "firewall.iptables"}),
        ("kernel", "usb 1-1: new high-speed USB device", {"event.action": None}),
    ],
)
def test_other_programs(program: str, message: str, expected: dict) -> None:
    fields = run(program, message)
    for key, value in expected.items():
        assert fields.get(key) == value, (key, fields)


def test_categories_and_types_are_ecs_values() -> None:
    samples = [
        ("sshd", "Accepted password for a from 1.1.1.1 port 1 ssh2"), ("sshd", "Invalid user a from 1.1.1.1"),
        ("sudo", "a : TTY=x ; PWD=/ ; USER=root ; COMMAND=/bin/ls"), ("su", "(to root) a on pts/0"),
        ("useradd", "new user: name=a, UID=1, GID=1"), ("kernel", "IN=a OUT= SRC=1.1.1.1 DST=2.2.2.2 PROTO=UDP"),
        ("sshd", "pam_unix(sshd:session): session opened for user a by (uid=0)"),
    ]
    for program, message in samples:
        fields = run(program, message)
        assert set(fields["event.category"]) <= ECS_CATEGORIES and set(fields["event.type"]) <= ECS_TYPES


def test_every_action_is_documented() -> None:
    """Detection rules are written against action names: each one used in code is in the docs."""
    doc = extract_pkg.__doc__ or ""
    folder = Path(extract_pkg.__file__).parent
    used: set[str] = set()
    for path in folder.glob("*.py"):
        text = path.read_text()
        used.update(re.findall(r'mark\(\s*\w+,\s*"([a-z_]+)"', text))
        used.update(re.findall(r'\("(user_[a-z_]+|group_[a-z_]+)"\)', text))
        used.update(re.findall(r'"event\.action"\] = "([a-z_]+)"', text))
        used.update(re.findall(r'_GPASSWD_\w+, "([a-z_]+)"', text))
    assert len(used) >= 25
    for action in used:
        assert re.search(rf"\b{action}", doc), f"action {action!r} is not documented in soc.ingest.extract"


def test_registry_and_unknown_program() -> None:
    assert {"sshd", "sudo", "su", "useradd", "passwd", "chpasswd", "gpasswd", "kernel"} <= set(EXTRACTORS)
    fields: dict = {}
    assert extract("nginx", "something", fields) is False and fields == {}
    assert extract(None, "pam_unix(cron:session): session opened for user root by (uid=0)", fields) is True
