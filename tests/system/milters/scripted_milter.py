#!/usr/bin/python3
"""A scriptable test milter (python3-milter / libmilter) for the tests of
sluiced's milter client.

    /usr/bin/python3 scripted_milter.py SOCKETSPEC SCENARIO.json LOGFILE

SOCKETSPEC is libmilter syntax: unix:/path/x.sock, inet:PORT@127.0.0.1.
A stale unix socket is removed at start. SIGTERM stops it (libmilter's
signal thread, which notices it within 5 s). With the environment variable
MILTER_EXIT_ON_STDIN_EOF=1 it also exits at once when its stdin reaches
end of file (the fixture closes the pipe, then waits for the PID). Every connection from the MTA gets its own thread and
object; callbacks of one connection are serialised by libmilter.

Scenario (JSON object, every key optional)
------------------------------------------

  "actions":   ["ADDHDRS", "CHGHDRS", "CHGBODY", "ADDRCPT", "ADDRCPT_PAR",
                "DELRCPT", "CHGFROM", "QUARANTINE", "SETSYMLIST"] or "all"
               Action flags requested in the option negotiation, ANDed
               with what the MTA offered (default "all" = everything
               offered). "strict_actions": true skips the AND, so a
               request beyond the offer makes libmilter give up.
  "protocol":  ["NR_HDR", "HDR_LEADSPC", "SKIP", "NOHELO", "RCPT_REJ", ...]
               SMFIP_* bits to request on top of the default (names with
               or without "P_"; an int is taken as a raw mask). The
               default request is SKIP when offered, nothing else: every
               callback is implemented, so every event is sent and every
               event is answered. Requests are ANDed with the MTA's offer
               (libmilter refuses more).
  "protocol_remove": ["SKIP"]   bits not to request.
  "symlist":   {"connect": "j {daemon_name}", "mail": "{mail_addr}", ...}
               macro lists sent in the negotiation reply (SMFIF_SETSYMLIST
               needed; stages connect helo mail rcpt data eoh eom, at most
               5 names each).
  "macros":    macro names read with getsymval() at every callback and
               logged (default: DEFAULT_MACROS below).
  "log_body":  false  -> body chunks are logged by length only.
  "timeout":   seconds libmilter waits for the MTA's next command (600).
  "callbacks": {NAME: RULE or [RULE, ...]}
               NAME: connect hello(helo) envfrom(mail) envrcpt(rcpt) data
               header eoh body eom abort close unknown.

RULE (the first rule of the list whose conditions hold is used; no rule
matching = continue):

  "match":  "bad@"        substring of the callback's argument text
  "regex":  "^<bad@"      re.search on that text
            argument text: connect "HOST ADDR", hello the HELO name,
            envfrom/envrcpt the address (with <>) then the ESMTP params,
            space separated; header "Name:value" (value as received);
            body the chunk (latin-1); eom the headers seen
            ("Name:value\n" each) + "\n" + the body; others "".
  "nth":    2             only the 2nd call of this callback on this
                          connection (1-based); a list [1, 3] for several
  "msg":    2             only in the 2nd message (counted by envfrom) of
                          this connection
  "action": continue | accept | reject | tempfail | discard | skip (body
            only; needs SKIP negotiated) | noreply (only if the callback's
            NR_ bit was negotiated). Default continue; with a "reply" and
            no action: 4xx -> tempfail, 5xx -> reject.
  "reply":  {"code": "550", "xcode": "5.7.1", "text": "no"}  smfi_setreply;
            "text": ["line 1", "line 2"] gives a multi-line reply
            (smfi_setmlreply). A '%' must be written '%%'.
  "sleep":  1.5           seconds to sleep before answering
  "progress": 3           (eom) smfi_progress() calls, "progress_interval"
                          seconds (default 0.2) apart, before the
                          modifications
  "mods":   [MOD, ...]    (eom) executed in order, then the answer
  "crash":  true          os._exit(3) at the start of the callback (the
                          MTA sees its socket closed mid-command)

MOD (eom only; each needs its action flag negotiated, else it is logged as
a failure and skipped):
  {"op": "addheader",  "name": "X-A", "value": "v"}
  {"op": "insheader",  "idx": 0, "name": "X-A", "value": "v"}
  {"op": "chgheader",  "name": "Subject", "idx": 1, "value": "new"}  ("" deletes)
  {"op": "replacebody", "text": "new body\r\n"}      or
  {"op": "replacebody", "chunks": ["part 1\r", "\npart 2\r\n"]}   (one
       smfi_replacebody call per chunk; "b64": true = chunks are base64)
  {"op": "addrcpt",    "addr": "<x@example.test>"}
  {"op": "addrcpt_par", "addr": "<x@example.test>", "args": "NOTIFY=NEVER"}
  {"op": "delrcpt",    "addr": "<bob@example.test>"}
  {"op": "chgfrom",    "addr": "<new@example.test>", "args": "BODY=8BITMIME"}
  {"op": "quarantine", "reason": "held by test"}
  {"op": "progress"}
  {"op": "sleep", "seconds": 0.5}

Example: reject one recipient, add a header and quarantine:

  {"protocol": ["HDR_LEADSPC"],
   "callbacks": {
     "envrcpt": [{"match": "bad@", "reply": {"code": "550",
                  "xcode": "5.1.1", "text": "no such user"}}],
     "eom": {"mods": [{"op": "addheader", "name": "X-Seen", "value": " yes"},
                      {"op": "quarantine", "reason": "test"}],
             "action": "accept"}}}

Log (LOGFILE, appended, one JSON object per line, flushed at once):
  {"ev": EVENT, "conn": N, "msg": M, "t": unix time, "args": {...},
   "macros": {...}, "answer": "continue"}
EVENT: negotiate (args: offered actions/protocol and what was requested),
connect (hostname, family, addr), helo (name), mail (addr, params), rcpt
(addr, params), data, header (name, value: exactly as received, so with
HDR_LEADSPC the leading space is there), eoh, body (len, data), eom,
abort, close, unknown (cmd); then "mod" lines (op, ok, error) for each
eom modification and "progress" lines (and "setreply_error",
"symlist_error" when libmilter refused those). msg: the message number in
the connection (envfrom calls so far; 0 before the first MAIL). macros: {name: value or null} for
the configured names. conn numbers the MTA's connections from 1. Lines
are written when the callback is entered (before any sleep), so their
order is the order in which the MTA's commands arrived.
"""
import base64
import json
import os
import re
import sys
import threading
import time

import Milter

DEFAULT_MACROS = ["j", "{daemon_name}", "{daemon_addr}", "v", "_", "i",
                  "{client_addr}", "{client_name}", "{client_port}",
                  "{mail_addr}", "{rcpt_addr}", "{rcpt_mailer}",
                  "{auth_type}", "{auth_authen}"]

ACTION_BITS = {
    "ADDHDRS": Milter.ADDHDRS, "CHGHDRS": Milter.CHGHDRS,
    "CHGBODY": Milter.CHGBODY, "MODBODY": Milter.CHGBODY,
    "ADDRCPT": Milter.ADDRCPT, "ADDRCPT_PAR": Milter.ADDRCPT_PAR,
    "DELRCPT": Milter.DELRCPT, "CHGFROM": Milter.CHGFROM,
    "QUARANTINE": Milter.QUARANTINE, "SETSYMLIST": Milter.SETSYMLIST,
}
PROTO_BITS = {n[2:]: getattr(Milter, n) for n in dir(Milter)
              if n.startswith("P_") and isinstance(getattr(Milter, n), int)}
NR_BIT = {"connect": Milter.P_NR_CONN, "hello": Milter.P_NR_HELO,
          "envfrom": Milter.P_NR_MAIL, "envrcpt": Milter.P_NR_RCPT,
          "data": Milter.P_NR_DATA, "header": Milter.P_NR_HDR,
          "eoh": Milter.P_NR_EOH, "body": Milter.P_NR_BODY,
          "unknown": Milter.P_NR_UNKN}
ANSWERS = {"continue": Milter.CONTINUE, "accept": Milter.ACCEPT,
           "reject": Milter.REJECT, "tempfail": Milter.TEMPFAIL,
           "discard": Milter.DISCARD, "skip": Milter.SKIP,
           "noreply": Milter.NOREPLY}
ALIASES = {"helo": "hello", "mail": "envfrom", "rcpt": "envrcpt"}
LOG_NAMES = {"hello": "helo", "envfrom": "mail", "envrcpt": "rcpt"}
STAGES = {"connect": Milter.M_CONNECT, "helo": Milter.M_HELO,
          "hello": Milter.M_HELO, "mail": Milter.M_ENVFROM,
          "envfrom": Milter.M_ENVFROM, "rcpt": Milter.M_ENVRCPT,
          "envrcpt": Milter.M_ENVRCPT, "data": Milter.M_DATA,
          "eoh": Milter.M_EOH, "eom": Milter.M_EOM}

SCENARIO = {}
LOG = None
LOG_LOCK = threading.Lock()


def log(obj):
    line = json.dumps(obj, sort_keys=True) + "\n"
    with LOG_LOCK:
        LOG.write(line)
        LOG.flush()


def bits(spec, table):
    if spec is None:
        return 0
    if isinstance(spec, int):
        return spec
    if isinstance(spec, str):
        spec = [spec]
    m = 0
    for name in spec:
        if isinstance(name, int):
            m |= name
            continue
        n = name.upper()
        if n.startswith("P_") and table is PROTO_BITS:
            n = n[2:]
        if n.startswith("SMFIP_") or n.startswith("SMFIF_"):
            n = n[6:]
        if n not in table:
            raise ValueError(f"unknown flag {name!r}")
        m |= table[n]
    return m


def rules_for(cb):
    cbs = SCENARIO.get("callbacks", {})
    r = None
    for k, v in cbs.items():
        if ALIASES.get(k, k) == cb:
            r = v
    if r is None:
        return []
    return r if isinstance(r, list) else [r]


def text(v):
    if isinstance(v, bytes):
        return v.decode("utf-8", "surrogateescape")
    return v


class Scripted(Milter.Base):

    def __init__(self):
        self.conn = Milter.uniqueID()
        self.calls = {}
        self.msgno = 0
        self.headers = []
        self.body_seen = []

    # -- helpers --------------------------------------------------------
    def macros(self):
        out = {}
        for name in SCENARIO.get("macros", DEFAULT_MACROS):
            try:
                out[name] = text(self.getsymval(name))
            except Exception:       # no context (close) or bad name
                out[name] = None
        return out

    def pick(self, cb, argtext):
        n = self.calls[cb] = self.calls.get(cb, 0) + 1
        for r in rules_for(cb):
            if "match" in r and r["match"] not in argtext:
                continue
            if "regex" in r and not re.search(r["regex"], argtext):
                continue
            if "nth" in r:
                nth = r["nth"] if isinstance(r["nth"], list) else [r["nth"]]
                if n not in nth:
                    continue
            if "msg" in r and r["msg"] != self.msgno:
                continue
            return r
        return {}

    def answer_of(self, cb, rule):
        a = rule.get("action")
        if a is None and rule.get("reply"):
            a = "tempfail" if str(rule["reply"]["code"]).startswith("4") \
                else "reject"
        a = a or "continue"
        if a not in ANSWERS:
            raise ValueError(f"unknown action {a!r}")
        # an event whose NR_ bit was negotiated must not be answered
        if self._protocol & NR_BIT.get(cb, 0) and a in ("continue",
                                                        "noreply"):
            a = "noreply"
        elif a == "noreply":
            a = "continue"       # NR not negotiated: libmilter must answer
        return a

    def run(self, cb, args, argtext):
        rule = self.pick(cb, argtext)
        answer = self.answer_of(cb, rule)
        log({"ev": LOG_NAMES.get(cb, cb), "conn": self.conn,
             "t": time.time(), "args": args, "macros": self.macros(),
             "answer": answer, "msg": self.msgno})
        if rule.get("crash"):
            os._exit(3)
        if rule.get("sleep"):
            time.sleep(float(rule["sleep"]))
        if cb == "eom":
            for i in range(int(rule.get("progress", 0))):
                if i:
                    time.sleep(float(rule.get("progress_interval", 0.2)))
                rc = self.progress()
                log({"ev": "progress", "conn": self.conn, "t": time.time(),
                     "rc": rc})
            for m in rule.get("mods", []):
                self.modify(m)
        rp = rule.get("reply")
        if rp:
            t = rp.get("text", "")
            lines = t if isinstance(t, list) else [t]
            try:
                self.setreply(str(rp["code"]), rp.get("xcode"), *lines)
            except Exception as e:
                log({"ev": "setreply_error", "conn": self.conn,
                     "error": repr(e)})
        return ANSWERS[answer]

    def modify(self, m):
        op = m.get("op")
        rc, err = None, None
        try:
            if op == "addheader":
                rc = self.addheader(m["name"], m["value"])
            elif op == "insheader":
                rc = self.addheader(m["name"], m["value"], int(m["idx"]))
            elif op == "chgheader":
                rc = self.chgheader(m["name"], int(m.get("idx", 1)),
                                    m["value"])
            elif op == "replacebody":
                chunks = m.get("chunks")
                if chunks is None:
                    chunks = [m.get("text", "")]
                for c in chunks:
                    b = base64.b64decode(c) if m.get("b64") \
                        else c.encode("utf-8", "surrogateescape")
                    rc = self.replacebody(b)
                    if rc not in (None, Milter.SUCCESS):
                        break
            elif op == "addrcpt":
                rc = self.addrcpt(m["addr"])
            elif op == "addrcpt_par":
                rc = self.addrcpt(m["addr"], m.get("args") or None)
            elif op == "delrcpt":
                rc = self.delrcpt(m["addr"])
            elif op == "chgfrom":
                rc = self.chgfrom(m["addr"], m.get("args") or None)
            elif op == "quarantine":
                rc = self.quarantine(m.get("reason", "quarantined"))
            elif op == "progress":
                rc = self.progress()
            elif op == "sleep":
                time.sleep(float(m.get("seconds", 0)))
            else:
                err = f"unknown op {op!r}"
        except Exception as e:      # DisabledAction, milter.error
            err = repr(e)
        ok = err is None and rc in (None, Milter.SUCCESS)
        log({"ev": "mod", "conn": self.conn, "t": time.time(), "op": op,
             "ok": ok, "rc": rc, "error": err})

    # -- negotiation ----------------------------------------------------
    def negotiate(self, opts):
        offered_act, offered_proto = opts[0], opts[1]
        act = SCENARIO.get("actions", "all")
        want_act = Milter.CURR_ACTS if act == "all" else \
            bits(act, ACTION_BITS)
        if not SCENARIO.get("strict_actions"):
            want_act &= offered_act
        proto = Milter.P_SKIP | bits(SCENARIO.get("protocol"), PROTO_BITS)
        proto &= ~bits(SCENARIO.get("protocol_remove"), PROTO_BITS)
        proto &= offered_proto
        self._actions = want_act
        self._protocol = proto
        opts[0] = want_act
        opts[1] = proto
        opts[2] = 0
        opts[3] = 0
        syml = {}
        for stage, names in SCENARIO.get("symlist", {}).items():
            try:
                # (Milter.Base.setsymlist passes bytes, which the C
                # module of python3-milter 1.0.5 refuses: call it directly)
                if not self._actions & Milter.SETSYMLIST:
                    raise Milter.DisabledAction("SETSYMLIST")
                self._ctx.setsymlist(STAGES[stage], names)
                syml[stage] = names
            except Exception as e:
                log({"ev": "symlist_error", "conn": self.conn,
                     "stage": stage, "error": repr(e)})
        log({"ev": "negotiate", "conn": self.conn, "t": time.time(),
             "args": {"offered_actions": offered_act,
                      "offered_protocol": offered_proto,
                      "actions": want_act, "protocol": proto,
                      "symlist": syml}})
        return Milter.CONTINUE

    # -- callbacks ------------------------------------------------------
    def connect(self, hostname, family, hostaddr):
        fam = {2: "inet", 10: "inet6", 1: "unix"}.get(int(family),
                                                       str(family))
        if isinstance(hostaddr, tuple):
            addr, port = hostaddr[0], hostaddr[1]
        else:
            addr, port = hostaddr, None
        return self.run("connect", {"hostname": text(hostname),
                                    "family": fam, "addr": text(addr),
                                    "port": port},
                        f"{text(hostname)} {text(addr)}")

    def hello(self, name):
        return self.run("hello", {"name": text(name)}, text(name))

    def envfrom(self, addr, *params):
        self.msgno += 1
        self.headers, self.body_seen = [], []
        p = [text(x) for x in params]
        return self.run("envfrom", {"addr": text(addr), "params": p},
                        " ".join([text(addr)] + p))

    def envrcpt(self, addr, *params):
        p = [text(x) for x in params]
        return self.run("envrcpt", {"addr": text(addr), "params": p},
                        " ".join([text(addr)] + p))

    def data(self):
        return self.run("data", {}, "")

    def header(self, name, value):
        self.headers.append((text(name), text(value)))
        return self.run("header", {"name": text(name), "value": text(value)},
                        f"{text(name)}:{text(value)}")

    def eoh(self):
        return self.run("eoh", {}, "")

    def body(self, chunk):
        self.body_seen.append(chunk)
        a = {"len": len(chunk)}
        if SCENARIO.get("log_body", True):
            a["data"] = chunk.decode("utf-8", "surrogateescape")
        return self.run("body", a, chunk.decode("latin-1"))

    def eom(self):
        t = "".join(f"{n}:{v}\n" for n, v in self.headers) + "\n" + \
            b"".join(self.body_seen).decode("latin-1")
        return self.run("eom", {}, t)

    def abort(self):
        self.run("abort", {}, "")
        return Milter.CONTINUE

    def close(self):
        self.run("close", {}, "")
        return Milter.CONTINUE

    def unknown(self, cmd):
        return self.run("unknown", {"cmd": text(cmd)}, text(cmd))


def exit_on_stdin_eof():
    try:
        while sys.stdin.buffer.read(4096):
            pass
    finally:
        os._exit(0)


def main(argv):
    global SCENARIO, LOG
    if len(argv) != 4:
        sys.stderr.write(__doc__.split("\n\n")[1] + "\n")
        return 2
    spec, scen, logpath = argv[1:]
    with open(scen) as f:
        SCENARIO = json.load(f)
    bits(SCENARIO.get("protocol"), PROTO_BITS)        # fail early on typos
    if SCENARIO.get("actions", "all") != "all":
        bits(SCENARIO["actions"], ACTION_BITS)
    LOG = open(logpath, "a")
    if os.environ.get("MILTER_EXIT_ON_STDIN_EOF") == "1":
        threading.Thread(target=exit_on_stdin_eof, daemon=True).start()
    Milter.factory = Scripted
    Milter.set_flags(Milter.CURR_ACTS)
    Milter.set_exception_policy(Milter.TEMPFAIL)
    sys.stdout.write(f"scripted_milter: pid {os.getpid()} on {spec}\n")
    sys.stdout.flush()
    Milter.runmilter("scripted", spec, int(SCENARIO.get("timeout", 600)))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
