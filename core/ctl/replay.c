/*
 * replay.c - `sluicectl replay`: run an .eml file through the configured
 * pipeline without the network, as if a client had sent it, and print
 * every filter call (stage, filter, verdict, time), the changes made at
 * the message stage, and the outcome. Exit status: 0 accepted, 1 refused
 * (reject, tempfail or disconnect at some stage), 2 usage or setup error.
 *
 * The filters run for real on an event loop of this process: Lua
 * coroutines, DNS queries (the configured servers), plugins. Nothing is
 * queued or delivered. Run as root, the process becomes `user:` after
 * reading the file, and refuses filters as root as sluiced does.
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>

#include "conf.h"
#include "ctl.h"
#include "dns.h"
#include "envelope.h"
#include "filter.h"
#include "kvstore.h"
#include "log.h"
#include "loop.h"
#include "message.h"
#include "mime.h"
#include "privs.h"
#include "server.h"
#include "smtp_params.h"
#include "util.h"

#define MAX_RCPTS	1000
#define FILE_MAX	(64u << 20)

struct replay {
	const char *ip, *helo, *from, *listener, *rdns, *file;
	unsigned port;
	const char *to[MAX_RCPTS];
	size_t nto;
};

struct run {
	int done;
	struct verdict v;
};

static void
print_trace(const struct sluice_call *c, uint64_t us)
{
	printf("  %-10s %-22s %-10s %8llu us%s%s\n", stage_name(c->stage),
	    c->filter->name, verdict_name(c->verdict.kind),
	    (unsigned long long)us, c->verdict.text[0] ? "  " : "",
	    c->verdict.text);
}

static void
run_done(void *arg, const struct verdict *v)
{
	struct run *r = arg;

	r->v = *v;
	r->done = 1;
}

static struct verdict
run_stage(struct pipeline *p, enum sluice_stage st,
    struct filter_subject *subj)
{
	struct run r = { 0 };

	if (!pipeline_has(p, st))
		return r.v;
	stage_run(p, st, subj, run_done, &r, NULL);
	while (!r.done)
		event_base_loop(loop_base(subj->worker->loop), EVLOOP_ONCE);
	return r.v;
}

/* refused - print the outcome of a decisive verdict; 1 if it refuses */
static int
refused(const struct verdict *v, enum sluice_stage st)
{
	char reply[VERDICT_TEXT_LEN + 32];

	switch (v->kind) {
	case SLUICE_REJECT:
	case SLUICE_TEMPFAIL:
	case SLUICE_DISCONNECT:
		verdict_reply(v, st, reply, sizeof(reply));
		printf("result: refused at %s by %s: %s\n", stage_name(st),
		    v->filter ? v->filter : "-", reply);
		return 1;
	default:
		return 0;
	}
}

static char *
read_eml(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	char *raw, *out;
	size_t n, o = 0;

	if (f == NULL) {
		fprintf(stderr, "sluicectl: %s: %s\n", path, strerror(errno));
		return NULL;
	}
	raw = xmalloc(FILE_MAX + 1);
	n = fread(raw, 1, FILE_MAX + 1, f);
	fclose(f);
	if (n > FILE_MAX) {
		fprintf(stderr, "sluicectl: %s: too large\n", path);
		free(raw);
		return NULL;
	}
	out = xmalloc(n * 2 + 3);		/* lines end in CRLF, as queued */
	for (size_t i = 0; i < n; i++) {
		if (raw[i] == '\n' && (i == 0 || raw[i - 1] != '\r'))
			out[o++] = '\r';
		out[o++] = raw[i];
	}
	if (o > 0 && out[o - 1] != '\n') {
		out[o++] = '\r';
		out[o++] = '\n';
	}
	free(raw);
	*len = o;
	return out;
}

static int
parse_args(struct replay *rp, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "ip", required_argument, NULL, 'i' },
		{ "port", required_argument, NULL, 'p' },
		{ "helo", required_argument, NULL, 'h' },
		{ "from", required_argument, NULL, 'f' },
		{ "to", required_argument, NULL, 't' },
		{ "listener", required_argument, NULL, 'l' },
		{ "rdns", required_argument, NULL, 'r' },
		{ NULL, 0, NULL, 0 },
	};
	int ch;

	rp->ip = "192.0.2.1";
	rp->port = 40000;
	rp->helo = "client.example";
	rp->from = "sender@example.org";
	rp->rdns = "unknown";
	optind = 1;
	while ((ch = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (ch) {
		case 'i': rp->ip = optarg; break;
		case 'p': rp->port = (unsigned)atoi(optarg); break;
		case 'h': rp->helo = optarg; break;
		case 'f': rp->from = optarg; break;
		case 'l': rp->listener = optarg; break;
		case 'r': rp->rdns = optarg; break;
		case 't':
			if (rp->nto == MAX_RCPTS)
				return -1;
			rp->to[rp->nto++] = optarg;
			break;
		default:
			return -1;
		}
	}
	if (optind != argc - 1 || rp->nto == 0) {
		fprintf(stderr, "sluicectl replay: one FILE.eml and at least "
		    "one --to are needed\n");
		return -1;
	}
	rp->file = argv[optind];
	return 0;
}

static void
print_changes(const struct message *m, const struct envelope *e)
{
	if (m->changed) {
		size_t len;
		char *text = message_render(m, &len);
		const char *end = strstr(text, "\r\n\r\n");
		printf("message changed; headers now:\n%.*s\n",
		    (int)(end ? (size_t)(end - text) : len), text);
		free(text);
	}
	printf("envelope: from=<%s> to=", e->sender);
	for (size_t i = 0; i < e->nrcpts; i++)
		printf("%s<%s>", i ? "," : "", e->rcpts[i].addr);
	printf("\n");
}

/* passes - run a stage; 1 unless it refused */
static int
passes(struct pipeline *p, enum sluice_stage st, struct filter_subject *subj,
    struct verdict *v)
{
	*v = run_stage(p, st, subj);
	return !refused(v, st);
}

/* replay_stages - the SMTP stages in order; 1 when something refused */
static int
replay_stages(struct pipeline *p, struct filter_subject *subj,
    struct envelope *env, const struct replay *rp, struct message *msg)
{
	struct verdict v;

	if (!passes(p, SLUICE_ON_CONNECT, subj, &v) ||
	    !passes(p, SLUICE_ON_HELO, subj, &v))
		return 1;
	subj->env = env;
	if (!passes(p, SLUICE_ON_MAIL, subj, &v))
		return 1;
	for (size_t i = 0; i < rp->nto; i++) {
		char reply[VERDICT_TEXT_LEN + 32];
		subj->rcpt = rp->to[i];
		v = run_stage(p, SLUICE_ON_RCPT, subj);
		if (v.kind != SLUICE_REJECT && v.kind != SLUICE_TEMPFAIL &&
		    v.kind != SLUICE_DISCONNECT) {
			envelope_add_rcpt(env, rp->to[i], NULL, 0);
			continue;
		}
		verdict_reply(&v, SLUICE_ON_RCPT, reply, sizeof(reply));
		printf("recipient <%s> refused by %s: %s\n", rp->to[i],
		    v.filter, reply);
		if (v.kind == SLUICE_DISCONNECT)
			return 1;
	}
	subj->rcpt = NULL;
	if (env->nrcpts == 0) {
		printf("result: refused: no recipient was accepted\n");
		return 1;
	}
	if (!passes(p, SLUICE_ON_DATA, subj, &v))
		return 1;
	subj->msg = msg;
	subj->modifiable = 1;
	int ok = passes(p, SLUICE_ON_MESSAGE, subj, &v);
	subj->modifiable = 0;
	if (!ok)
		return 1;
	if (v.kind == SLUICE_DISCARD || v.kind == SLUICE_QUARANTINE)
		printf("result: %s at message by %s\n", verdict_name(v.kind),
		    v.filter);
	print_changes(msg, env);
	return passes(p, SLUICE_ON_QUEUE, subj, &v) ? 0 : 1;
}

int
ctl_replay(const char *confpath, int argc, char **argv)
{
	struct replay rp = { 0 };
	struct worker w = { 0 };
	struct filter_subject subj = { 0 };
	struct envelope env;
	struct mail_params mp = { 0 };
	struct tags stags = { 0 };
	struct message msg;
	struct pipeline *p;
	char err[1024];
	size_t len;
	char *data;
	int rv;

	if (parse_args(&rp, argc, argv) == -1 ||
	    (data = read_eml(rp.file, &len)) == NULL)
		return 2;
	log_init(LOG_SINK_STDERR, NULL, 0);
	loop_global_init();
	dns_global_init();
	mime_global_init();
	kv_init();
	if ((server.conf = conf_load(confpath, err, sizeof(err))) == NULL) {
		fprintf(stderr, "sluicectl: %s\n", err);
		free(data);
		return 2;
	}
	/* the filters run as sluiced would run them: as `user:`, never as
	   root unless allow_root_filters says so */
	if (privs_filters_check(server.conf, err, sizeof(err)) == -1) {
		fprintf(stderr, "sluicectl: %s\n", err);
		conf_free(server.conf);
		free(data);
		return 2;
	}
	privs_drop(server.conf, 0);
	w.loop = loop_new("replay");
	w.dns = dns_resolver_new(loop_base(w.loop), &server.conf->dns, err,
	    sizeof(err));
	if ((p = pipeline_build(server.conf, 1, err, sizeof(err))) == NULL ||
	    pipeline_attach(p, &w, 0, err, sizeof(err)) == -1) {
		fprintf(stderr, "sluicectl: %s\n", err);
		pipeline_unref(p);
		free(data);
		rv = 2;
		goto out;
	}
	subj.worker = &w;
	subj.listener = rp.listener ? rp.listener :
	    server.conf->listeners[0].name;
	subj.client_addr = rp.ip;
	subj.client_port = rp.port;
	subj.client_rdns = rp.rdns;
	subj.helo = rp.helo;
	subj.session_tags = &stags;
	subj.mp = &mp;
	envelope_init(&env);
	qid_new(env.id);
	env.sender = xstrdup(rp.from);
	subj.tx_tags = &env.tags;
	message_init(&msg, data, len);
	filter_trace = print_trace;
	printf("replay of %s: client [%s]:%u helo %s, from <%s>, qid %s\n",
	    rp.file, rp.ip, rp.port, rp.helo, rp.from, env.id);
	rv = replay_stages(p, &subj, &env, &rp, &msg);
	run_stage(p, SLUICE_ON_DISCONNECT, &subj);
	pipeline_session_end(p, &subj);		/* milter connections */
	if (rv == 0)
		printf("result: accepted\n");
	mime_tree_free(subj.mime);
	message_clear(&msg);
	envelope_clear(&env);
	tags_clear(&stags);
	pipeline_unref(p);
out:
	dns_resolver_free(w.dns);
	loop_free(w.loop);
	conf_free(server.conf);
	kv_shutdown();
	mime_global_shutdown();
	dns_global_cleanup();
	return rv;
}
