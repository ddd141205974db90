/* SPDX-License-Identifier: Apache-2.0 */
/*
 * config_parse on arbitrary bytes: it must return CKR_OK or
 * CKR_FUNCTION_FAILED (CKR_HOST_MEMORY only when memory runs out), never
 * crash, leak or read outside the input. A parsed configuration must be
 * complete. jsonpos_line is also run over the same text with the paths
 * config errors use, when the text is JSON: config.c calls it only after
 * jansson parsed the text (fuzz_jsonpos covers arbitrary text).
 */
#include <stdint.h>

#include "fuzz_common.h"
#include "slots/config.h"
#include "common/jsonpos.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_paths(const char *text, size_t len)
{
	static const jpath_elem p_prov[] = {{"providers", 0}, {NULL, 0}, {"name", 0}};
	static const jpath_elem p_prov2[] = {{"providers", 0}, {NULL, 1}, {"store", 0}};
	static const jpath_elem p_log[] = {{"log", 0}, {"destination", 0}};
	static const jpath_elem p_deep[] = {{"a", 0}, {NULL, 3}, {"b", 0}, {NULL, 0},
					    {"c", 0}, {NULL, 7}, {"d", 0}, {"e", 0}};
	unsigned max = fuzz_count_lines(text, len);
	FUZZ_CHECK(jsonpos_line(text, len, p_prov, 0) <= max);
	FUZZ_CHECK(jsonpos_line(text, len, p_prov, 1) <= max);
	FUZZ_CHECK(jsonpos_line(text, len, p_prov, 3) <= max);
	FUZZ_CHECK(jsonpos_line(text, len, p_prov2, 3) <= max);
	FUZZ_CHECK(jsonpos_line(text, len, p_log, 2) <= max);
	FUZZ_CHECK(jsonpos_line(text, len, p_deep, 8) <= max);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static int ready;
	if (!ready) {
		fuzz_quiet_log();
		ready = 1;
	}
	/* An exact-size heap copy: a read past the end is an ASan report. */
	char *text = malloc(size ? size : 1);
	if (!text)
		return 0;
	memcpy(text, data, size);
	config_t *cfg = NULL;
	CK_RV rv = config_parse(text, size, "/fuzz/p11kms.json", &cfg);
	FUZZ_CHECK(rv == CKR_OK || rv == CKR_FUNCTION_FAILED ||
		   rv == CKR_HOST_MEMORY);
	FUZZ_CHECK((rv == CKR_OK) == (cfg != NULL));
	if (cfg) {
		FUZZ_CHECK(cfg->path && strcmp(cfg->path, "/fuzz/p11kms.json") == 0);
		for (size_t i = 0; i < cfg->nproviders; i++) {
			provider_cfg *p = &cfg->providers[i];
			FUZZ_CHECK(p->name && p->store && p->ops && p->obj);
			FUZZ_CHECK(p->login == LOGIN_REQUIRED ||
				   p->login == LOGIN_OPTIONAL);
			for (size_t j = 0; j < i; j++) {
				FUZZ_CHECK(strcmp(p->name, cfg->providers[j].name) != 0);
				FUZZ_CHECK(p->slot_id != cfg->providers[j].slot_id);
			}
		}
		FUZZ_CHECK(!cfg->log_dest || strcmp(cfg->log_dest, "stderr") == 0 ||
			   strcmp(cfg->log_dest, "syslog") == 0 ||
			   cfg->log_dest[0] == '/');
		config_free(cfg);
	}
	json_t *doc = json_loadb(text, size, JSON_REJECT_DUPLICATES, NULL);
	if (doc)
		check_paths(text, size);
	json_decref(doc);
	free(text);
	return 0;
}
