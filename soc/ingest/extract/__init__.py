"""Message-level extraction for syslog programs: the MSG text -> ECS fields.

An extractor is ``callable(message, fields) -> bool``: it reads the syslog MSG of one program
and adds ECS fields to ``fields`` (which already holds the syslog header fields), returning
True when it recognised the message. Not recognising a message is normal (most sshd debug
lines carry nothing worth a field) and never lowers the parse status.

:data:`EXTRACTORS` maps a program name (lower case, without ``[pid]`` and without the
``(pam_unix)`` suffix) to its extractor. :func:`extract` is the one entry point the syslog
parser calls; it also routes PAM lines (``pam_unix(sshd:auth): ...`` from any program, and
the old ``sshd(pam_unix)[pid]:`` tag style) to the PAM extractor.

``event.action`` values (stable snake_case; detection rules are written against these):

==================================  ===========  ====================================================
action                              outcome      meaning
==================================  ===========  ====================================================
ssh_login                           success      sshd/dropbear ``Accepted <method> for U from IP``
ssh_login                           failure      ``Failed <method> for [invalid user] U from IP``,
                                                 dropbear ``Bad password attempt``
ssh_invalid_user                    failure      ``Invalid user U from IP``, dropbear nonexistent user
ssh_user_not_allowed                failure      ``User U from IP not allowed because ...``
ssh_max_auth_attempts               failure      ``maximum authentication attempts exceeded``,
                                                 ``Disconnecting: Too many authentication failures``
ssh_disconnect                      unknown      ``Disconnected from`` / ``Connection closed by`` /
                                                 ``Received disconnect`` / ``Connection reset by``
                                                 (``sshd.preauth: true`` when before authentication)
ssh_connection                      unknown      ``Connection from IP port N on IP port N``
ssh_possible_break_in               unknown      reverse mapping failed / ``POSSIBLE BREAK-IN ATTEMPT``
ssh_no_identification               failure      ``Did not receive identification string from IP``
ssh_bad_protocol                    failure      ``Bad protocol version identification``
ssh_negotiation_failed              failure      ``Unable to negotiate with IP`` (cipher/kex mismatch)
ssh_fatal                           failure      other ``fatal:`` lines
authentication_failure              failure      PAM ``authentication failure;`` (any program),
                                                 sshd ``error: PAM: ... for [illegal user] U from H``
authentication_failures_repeated    failure      PAM ``N more authentication failures;`` (summary
                                                 line; not counted again as single failures)
user_unknown                        failure      PAM ``check pass; user unknown``, ``user "X" does not
                                                 exist``
session_opened                      success      PAM ``session opened for user U by ...``
session_closed                      success      PAM ``session closed for user U``
sudo_command                        success      sudo ``U : TTY=.. ; PWD=.. ; USER=T ; COMMAND=C``
sudo_auth_failure                   failure      sudo ``N incorrect password attempt(s)``, doas
                                                 ``failed auth``
sudo_not_in_sudoers                 failure      sudo ``user NOT in sudoers``
sudo_command_denied                 failure      sudo ``command not allowed`` / doas ``failed command``
su                                  success      su ``Successful su for T by U``, ``(to T) U on tty``,
                                                 ``+ tty U:T``
su                                  failure      su ``FAILED SU (to T) U``, ``BAD SU U to T``,
                                                 ``- tty U:T``, ``failed: tty changing from U to T``
user_created                        success      useradd ``new user: name=T, UID=..``
user_created                        failure      useradd ``failed adding user 'T'``
user_deleted                        success      userdel ``delete user 'T'``
user_modified                       success      usermod ``change user 'T' ...``, lock/unlock
user_renamed                        success      usermod ``change user name 'A' to 'B'``
group_created                       success      ``new group: name=G``
group_deleted                       success      groupdel ``group 'G' removed``, ``removed group``
group_modified                      success      groupmod / gpasswd ``members of group G set``
user_added_to_group                 success      ``add 'T' to group 'G'``, gpasswd ``user T added``
user_removed_from_group             success      ``delete 'T' from group 'G'``, gpasswd ``removed``
password_changed                    success      PAM ``password changed for T``, passwd, usermod
mail_login                          success      Dovecot ``imap-login: Login: user=<U>, ... rip=IP``
mail_login                          failure      Dovecot ``(auth failed, N attempts ...)``, ``Password
                                                 mismatch``; Postfix ``SASL ... authentication failed``
firewall_packet                     --           netfilter/iptables log line (``event.type``
                                                 ``denied``/``allowed`` when the prefix says so)
==================================  ===========  ====================================================

User fields: ``user.name`` is the acting user (who logged in / who ran sudo or su);
``user.target.name`` is the account acted upon (sudo/su target, account-management
target); ``user.effective.name`` is the identity a command runs as (sudo ``USER=``, su
target). ``source.ip``/``source.port`` is the remote peer. ``event.category``/``event.type``
use ECS allowed values only.
"""

from __future__ import annotations

from typing import Any

from . import accounts, mail, netfilter, pam, sshd, su, sudo
from .base import Extractor, mark

__all__ = ["EXTRACTORS", "Extractor", "extract", "mark"]

EXTRACTORS: dict[str, Extractor] = {
    "sshd": sshd.extract,
    "sshd-session": sshd.extract,
    "sshd-auth": sshd.extract,
    "dropbear": sshd.extract_dropbear,
    "sudo": sudo.extract,
    "doas": sudo.extract_doas,
    "su": su.extract,
    "useradd": accounts.extract,
    "adduser": accounts.extract,
    "userdel": accounts.extract,
    "deluser": accounts.extract,
    "usermod": accounts.extract,
    "groupadd": accounts.extract,
    "groupdel": accounts.extract,
    "groupmod": accounts.extract,
    "passwd": accounts.extract,
    "chpasswd": accounts.extract,
    "gpasswd": accounts.extract,
    "chage": accounts.extract,
    "kernel": netfilter.extract,
    "dovecot": mail.extract_dovecot,
    "postfix/smtpd": mail.extract_postfix,
    "postfix/submission/smtpd": mail.extract_postfix,
    "postfix/smtps/smtpd": mail.extract_postfix,
}
"""program (lower case, no ``[pid]``, no ``(pam_unix)``) -> extractor."""


def extract(program: str | None, message: str, fields: dict[str, Any]) -> bool:
    """Run the extractor for ``program`` (and PAM extraction) over ``message``.

    ``program`` is the syslog tag in lower case (``sshd``, ``su(pam_unix)``, ``cron``...).
    Returns True when something was recognised. Never raises for ordinary input; the
    caller (``parsers.parse``) still guards against the unexpected.
    """
    if message.startswith("pam_"):
        if pam.extract(message, fields):
            return True
    base = program or ""
    if "(" in base:
        head, _, rest = base.partition("(")
        base = head
        if rest.startswith("pam") and pam.extract_body(message, fields, head):
            return True
    fn = EXTRACTORS.get(base)
    if fn is not None:
        return fn(message, fields)
    return False
