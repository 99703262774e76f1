/*
 * filter_dns.c - DNS for C plugins (host->dns_query) on the worker's
 * resolver, and header decoding for both filter kinds.
 *
 * The call is held while the query runs: a callback for a call that has
 * ended meanwhile (timeout) is dropped, never delivered.
 */
#include <stdlib.h>
#include <string.h>

#include "dns.h"
#include "filter.h"
#include "filter_support.h"
#include "mime.h"
#include "server.h"
#include "util.h"

struct plugin_dns {
	struct sluice_call *call;
	sluice_dns_cb cb;
	void *arg;
};

static enum sluice_dns_status
map_status(enum dns_status s)
{
	switch (s) {
	case DNS_OK:
		return SLUICE_DNS_OK;
	case DNS_NXDOMAIN:
		return SLUICE_DNS_NXDOMAIN;
	case DNS_NODATA:
		return SLUICE_DNS_NODATA;
	default:
		return SLUICE_DNS_TEMPFAIL;
	}
}

static void
on_answer(const struct dns_result *r, void *arg)
{
	struct plugin_dns *pd = arg;
	struct sluice_dns_answer a;
	const char **values = xcalloc(r->nrrs + 1, sizeof(*values));
	unsigned *prefs = xcalloc(r->nrrs + 1, sizeof(*prefs));

	for (size_t i = 0; i < r->nrrs; i++) {
		values[i] = r->rrs[i].text;
		prefs[i] = r->rrs[i].pref;
	}
	a.status = map_status(r->status);
	a.n = r->nrrs;
	a.values = values;
	a.prefs = prefs;
	if (call_active(pd->call))
		pd->cb(pd->call, &a, pd->arg);
	call_release(pd->call);
	free(values);
	free(prefs);
	free(pd);
}

int
filter_dns_query(struct sluice_call *c, const char *name, const char *type,
    sluice_dns_cb cb, void *arg)
{
	struct plugin_dns *pd;
	enum dns_type t;

	if (!call_active(c) || name == NULL || cb == NULL ||
	    c->subj->worker->dns == NULL ||
	    dns_type_parse(type ? type : "A", &t) == -1)
		return -1;
	pd = xcalloc(1, sizeof(*pd));
	pd->call = c;
	pd->cb = cb;
	pd->arg = arg;
	call_hold(c);
	dns_query(c->subj->worker->dns, name, t, on_answer, pd);
	return 0;
}

/*
 * filter_decode_header - RFC 2047 decoding; a value without an encoded
 * word that is valid UTF-8 already needs none (most do: skip GMime)
 */
char *
filter_decode_header(const char *raw)
{
	if (raw != NULL && strstr(raw, "=?") == NULL &&
	    utf8_valid(raw, strlen(raw)) && strpbrk(raw, "\r\n") == NULL)
		return xstrdup(raw);
	return mime_decode_header(raw);
}
