/*
 * lua_api_mime.c - ctx:parts(): the MIME tree of the message (core/mime.h),
 * parsed on first use and kept for the rest of the message's filters.
 *
 * Each part is a table: index, parent, depth, content_type, charset,
 * disposition, filename, transfer_encoding, is_multipart, is_attachment,
 * size, truncated, decode_error, sniffed_type, archive_members (a list or
 * nil), archive_truncated, archive_encrypted, and content(), a function
 * returning the decoded bytes (valid during the call only).
 */
#include <lauxlib.h>
#include <lua.h>

#include "filter.h"
#include "lua_host.h"
#include "message.h"
#include "mime.h"

static void
set_str(lua_State *L, const char *k, const char *v)
{
	if (v == NULL)
		return;
	lua_pushstring(L, v);
	lua_setfield(L, -2, k);
}

static void
set_int(lua_State *L, const char *k, lua_Integer v)
{
	lua_pushinteger(L, v);
	lua_setfield(L, -2, k);
}

static void
set_bool(lua_State *L, const char *k, int v)
{
	lua_pushboolean(L, v);
	lua_setfield(L, -2, k);
}

/* part_content - upvalues: the call's ctx (checked) and the part index */
static int
part_content(lua_State *L)
{
	struct sluice_call *c = lua_current_call(L);
	lua_Integer i = lua_tointeger(L, lua_upvalueindex(1));

	if (c == NULL || c->subj->mime == NULL ||
	    (size_t)i >= c->subj->mime->nparts)
		return luaL_error(L, "part:content() only during the call "
		    "that got the part");
	const struct mime_part *p = &c->subj->mime->parts[i];
	if (p->content == NULL)
		lua_pushliteral(L, "");
	else
		lua_pushlstring(L, (const char *)p->content, p->content_len);
	return 1;
}

static void
push_part(lua_State *L, const struct mime_part *p)
{
	lua_createtable(L, 0, 20);
	set_int(L, "index", p->index);
	set_int(L, "parent", p->parent);
	set_int(L, "depth", p->depth);
	set_str(L, "content_type", p->content_type);
	set_str(L, "charset", p->charset);
	set_str(L, "disposition", p->disposition);
	set_str(L, "filename", p->filename);
	set_str(L, "transfer_encoding", p->transfer_encoding);
	set_bool(L, "is_multipart", p->is_multipart);
	set_bool(L, "is_attachment", p->is_attachment);
	set_int(L, "size", (lua_Integer)p->size);
	set_bool(L, "truncated", p->truncated);
	set_bool(L, "decode_error", p->decode_error);
	set_str(L, "sniffed_type", p->sniffed_type);
	if (p->archive_members != NULL) {
		lua_createtable(L, (int)p->narchive_members, 0);
		for (size_t i = 0; i < p->narchive_members; i++) {
			lua_pushstring(L, p->archive_members[i]);
			lua_rawseti(L, -2, (lua_Integer)i + 1);
		}
		lua_setfield(L, -2, "archive_members");
	}
	set_bool(L, "archive_truncated", p->archive_truncated);
	set_bool(L, "archive_encrypted", p->archive_encrypted);
	lua_pushinteger(L, p->index);
	lua_pushcclosure(L, part_content, 1);
	lua_setfield(L, -2, "content");
}

int
lua_api_parts(lua_State *L, struct sluice_call *c)
{
	struct filter_subject *s = c->subj;

	if (s->mime == NULL) {
		struct mime_limits lim;
		struct message *m = subject_msg(s);
		if (m == NULL)
			return luaL_error(L, "the message cannot be read");
		mime_limits_default(&lim);
		s->mime = mime_parse(m->data, m->len, &lim);
		if (s->mime == NULL)
			return luaL_error(L, "out of memory parsing MIME");
	}
	lua_createtable(L, (int)s->mime->nparts, 0);
	for (size_t i = 0; i < s->mime->nparts; i++) {
		push_part(L, &s->mime->parts[i]);
		lua_rawseti(L, -2, (lua_Integer)i + 1);
	}
	if (s->mime->problems != NULL) {	/* second result: what was odd */
		lua_pushstring(L, s->mime->problems);
		return 2;
	}
	return 1;
}
