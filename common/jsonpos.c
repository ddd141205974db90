/* SPDX-License-Identifier: Apache-2.0 */
#include "jsonpos.h"

#include <stdbool.h>
#include <string.h>

typedef struct scan {
	const char *s;
	size_t len, off;
	unsigned line;
	bool bad;
} scan_t;

static void skip_ws(scan_t *c)
{
	while (c->off < c->len) {
		char ch = c->s[c->off];
		if (ch == '\n')
			c->line++;
		else if (ch != ' ' && ch != '\t' && ch != '\r')
			return;
		c->off++;
	}
}

/* Skip a string starting at '"'; if out is given, compare it to want. */
static bool skip_string(scan_t *c, const char *want, bool *match)
{
	size_t wl = want ? strlen(want) : 0, wi = 0;
	bool eq = true;
	c->off++; /* opening quote */
	while (c->off < c->len) {
		char ch = c->s[c->off++];
		if (ch == '"') {
			if (match)
				*match = eq && wi == wl;
			return true;
		}
		if (ch == '\\') {
			if (c->off >= c->len)
				break;
			ch = c->s[c->off++];
			eq = false; /* escaped names never match: fine for config keys */
		}
		if (ch == '\n')
			c->line++;
		if (want) {
			if (wi < wl && want[wi] == ch)
				wi++;
			else
				eq = false;
		}
	}
	c->bad = true;
	return false;
}

static bool skip_value(scan_t *c, int depth);

static bool skip_container(scan_t *c, int depth, char close)
{
	if (depth > 32) {
		c->bad = true;
		return false;
	}
	c->off++;
	for (;;) {
		skip_ws(c);
		if (c->off >= c->len) {
			c->bad = true;
			return false;
		}
		char ch = c->s[c->off];
		if (ch == close) {
			c->off++;
			return true;
		}
		if (ch == '}' || ch == ']') { /* the wrong closer: malformed */
			c->bad = true;
			return false;
		}
		if (ch == ',' || ch == ':') {
			c->off++;
			continue;
		}
		if (!skip_value(c, depth + 1))
			return false;
	}
}

static bool skip_value(scan_t *c, int depth)
{
	skip_ws(c);
	if (c->off >= c->len) {
		c->bad = true;
		return false;
	}
	char ch = c->s[c->off];
	if (ch == '"')
		return skip_string(c, NULL, NULL);
	if (ch == '{')
		return skip_container(c, depth, '}');
	if (ch == '[')
		return skip_container(c, depth, ']');
	size_t start = c->off;
	while (c->off < c->len) {
		ch = c->s[c->off];
		if (ch == ',' || ch == '}' || ch == ']' || ch == ' ' ||
		    ch == '\n' || ch == '\t' || ch == '\r')
			break;
		c->off++;
	}
	if (c->off == start) { /* no value at all: never loop on it */
		c->bad = true;
		return false;
	}
	return true;
}

/* Position c at the start of the value for elem inside the container
 * that starts at c->off. */
static bool descend(scan_t *c, const jpath_elem *e)
{
	skip_ws(c);
	if (c->off >= c->len)
		return false;
	char open = c->s[c->off];
	if ((e->key && open != '{') || (!e->key && open != '['))
		return false;
	c->off++;
	size_t idx = 0;
	for (;;) {
		skip_ws(c);
		if (c->off >= c->len)
			return false;
		char ch = c->s[c->off];
		if (ch == '}' || ch == ']')
			return false;
		if (ch == ',') {
			c->off++;
			continue;
		}
		if (e->key) {
			bool match = false;
			if (ch != '"' || !skip_string(c, e->key, &match))
				return false;
			skip_ws(c);
			if (c->off >= c->len || c->s[c->off] != ':')
				return false;
			c->off++;
			skip_ws(c);
			if (match)
				return true;
		} else if (idx++ == e->index) {
			return true;
		}
		if (!skip_value(c, 1))
			return false;
	}
}

unsigned jsonpos_line(const char *text, size_t len, const jpath_elem *path,
		      size_t depth)
{
	scan_t c = {.s = text, .len = len, .off = 0, .line = 1, .bad = false};
	for (size_t i = 0; i < depth && i < 32; i++)
		if (!descend(&c, &path[i]) || c.bad)
			return 0;
	skip_ws(&c);
	return c.bad ? 0 : c.line;
}
