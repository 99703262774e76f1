/*
 * queue.c - sluicectl's queue commands: list, show, flush, hold, release,
 * delete, bounce. Each sends one request to the running sluiced over its
 * control socket (control.h) and prints the answer for people (like
 * mailq / postqueue -p), or as JSON lines with --json (list, show).
 * Exit status: 0 done, 1 refused by the server (no such message, ...),
 * 2 usage error or no server to talk to.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "conf.h"
#include "ctl.h"
#include "envelope.h"
#include "util.h"

#define FIELDS_MAX	16

struct field {
	char *key, *value;		/* value decoded */
};

struct record {
	char *kind;
	struct field f[FIELDS_MAX];
	size_t n;
};

/* parse - "kind k=v k=v" into rec (line is modified in place) */
static void
parse(char *line, struct record *rec)
{
	char *p, *sp;

	memset(rec, 0, sizeof(*rec));
	rec->kind = line;
	if ((p = strchr(line, ' ')) == NULL)
		return;
	*p++ = '\0';
	for (; p != NULL && rec->n < FIELDS_MAX; p = sp) {
		if ((sp = strchr(p, ' ')) != NULL)
			*sp++ = '\0';
		char *eq = strchr(p, '=');
		if (eq == NULL)
			continue;
		*eq = '\0';
		if (value_decode(eq + 1) == -1)
			continue;
		rec->f[rec->n].key = p;
		rec->f[rec->n++].value = eq + 1;
	}
}

static const char *
get(const struct record *r, const char *key)
{
	for (size_t i = 0; i < r->n; i++)
		if (strcmp(r->f[i].key, key) == 0)
			return r->f[i].value;
	return "";
}

static void
json_string(const char *s)
{
	putchar('"');
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;
		if (c == '"' || c == '\\')
			printf("\\%c", c);
		else if (c < 0x20 || c == 0x7f)
			printf("\\u%04x", c);
		else if (c < 0x80)
			putchar(c);
		else {
			/* JSON is UTF-8: a byte outside a well-formed
			   sequence (8-bit headers) becomes U+FFFD */
			size_t n = utf8_seq((const unsigned char *)s,
			    strnlen(s, 4));
			if (n == 0)
				printf("\\ufffd");
			else {
				fwrite(s, 1, n, stdout);
				s += n - 1;
			}
		}
	}
	putchar('"');
}

static void
print_json(const struct record *r)
{
	printf("{\"kind\":");
	json_string(r->kind);
	for (size_t i = 0; i < r->n; i++) {
		printf(",");
		json_string(r->f[i].key);
		printf(":");
		json_string(r->f[i].value);
	}
	printf("}\n");
}

static void
print_age(const char *arrival)
{
	time_t t = (time_t)strtoll(arrival, NULL, 10);
	long age = (long)(time(NULL) - t);
	char when[64];
	struct tm tm;

	localtime_r(&t, &tm);
	strftime(when, sizeof(when), "%a %b %e %H:%M:%S", &tm);
	printf("%s (%ldh%02ldm ago)", when, age / 3600, age / 60 % 60);
}

static void
print_msg(const struct record *r)
{
	long long next = strtoll(get(r, "next"), NULL, 10);
	const char *err = get(r, "error");

	printf("%-14s %9s  ", get(r, "id"), get(r, "size"));
	print_age(get(r, "arrival"));
	printf("  %s\n", get(r, "sender"));
	printf("    %s, %s of %s recipients pending, %s attempts",
	    get(r, "state"), get(r, "pending"), get(r, "recipients"),
	    get(r, "attempts"));
	if (next > 0 && strcmp(get(r, "state"), "deferred") == 0)
		printf(", next in %llds", next - (long long)time(NULL));
	printf("\n");
	if (*err)
		printf("    last error: %s\n", err);
}

static void
print_human(const struct record *r, int show)
{
	if (strcmp(r->kind, "msg") == 0)
		print_msg(r);
	else if (strcmp(r->kind, "rcpt") == 0 && (show ||
	    strcmp(get(r, "state"), "pending") == 0)) {
		printf("      %-9s %s", get(r, "state"), get(r, "addr"));
		if (show && *get(r, "reason"))
			printf("  (%s)", get(r, "reason"));
		printf("\n");
	} else if (strcmp(r->kind, "env") == 0)
		printf("    client [%s] helo %s, listener %s, %s\n",
		    get(r, "client"), get(r, "helo"), get(r, "listener"),
		    get(r, "protocol"));
	else if (strcmp(r->kind, "tag") == 0)
		printf("    tag %s = %s\n", get(r, "key"), get(r, "value"));
	else if (strcmp(r->kind, "header") == 0)
		printf("  | %s\n", get(r, "line"));
}

/* run - request, check "ok", print the data lines */
static int
run(const char *path, const char *line, int json, int show)
{
	char *answer = ctl_request(path, line), *p, *nl;
	size_t msgs = 0;

	if (answer == NULL)
		return 2;
	if (strncmp(answer, "ok\n", 3) != 0) {
		answer[strcspn(answer, "\n")] = '\0';
		fprintf(stderr, "sluicectl: %s\n", strncmp(answer, "error ", 6)
		    == 0 ? answer + 6 : "unexpected answer from sluiced");
		free(answer);
		return 1;
	}
	for (p = answer + 3; *p; p = nl + 1) {
		struct record r;
		if ((nl = strchr(p, '\n')) == NULL)
			break;
		*nl = '\0';
		parse(p, &r);
		msgs += strcmp(r.kind, "msg") == 0;
		if (json)
			print_json(&r);
		else
			print_human(&r, show);
	}
	if (!json && !show && strcmp(line, "list") == 0)
		printf(msgs ? "-- %zu message%s\n" : "Mail queue is empty\n",
		    msgs, msgs == 1 ? "" : "s");
	free(answer);
	return 0;
}

int
ctl_queue(const char *conf, int argc, char **argv)
{
	const char *cmd = argv[0], *sock = NULL, *id = NULL;
	char path[512], line[128];
	int json = 0;

	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--json") == 0)
			json = 1;
		else if (strcmp(argv[i], "-s") == 0 && i + 1 < argc)
			sock = argv[++i];
		else if (id == NULL && argv[i][0] != '-')
			id = argv[i];
		else {
			fprintf(stderr, "sluicectl %s: unexpected '%s'\n", cmd,
			    argv[i]);
			return 2;
		}
	}
	int needs_id = strcmp(cmd, "list") != 0 && strcmp(cmd, "flush") != 0;
	if ((needs_id && id == NULL) || (!needs_id && id != NULL &&
	    strcmp(cmd, "list") == 0)) {
		fprintf(stderr, "sluicectl %s: %s\n", cmd, needs_id ?
		    "a queue ID is needed" : "takes no queue ID");
		return 2;
	}
	if (ctl_socket_path(conf, sock, path, sizeof(path)) == -1)
		return 2;
	snprintf(line, sizeof(line), "%s%s%.64s", cmd, id ? " " : "",
	    id ? id : "");
	return run(path, line, json, strcmp(cmd, "show") == 0);
}
