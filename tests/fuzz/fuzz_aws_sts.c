/* SPDX-License-Identifier: Apache-2.0 */
/*
 * aws_sts_parse_reply (providers/aws/creds_sts.c) on arbitrary bytes: the
 * bounded XML extractor for STS AssumeRoleWithWebIdentity replies and the
 * ISO 8601 reader behind Expiration. Each input is read as a success
 * (HTTP 200) and as an error reply (400, 503). Only the documented
 * results; success means complete credentials; nothing left in secure
 * memory (ASan cannot see sec_alloc leaks, so sec_in_use is checked).
 * Seeds: tests/vectors/aws/sts/.
 */
#include <stdint.h>

#include "fuzz_common.h"
#include "common/secmem.h"
#include "providers/aws/creds.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const long statuses[] = {200, 400, 503};
	static int ready;
	if (!ready) {
		fuzz_quiet_log();
		ready = 1;
	}
	char *xml = malloc(size ? size : 1);
	if (!xml)
		return 0;
	memcpy(xml, data, size);
	size_t before = sec_in_use();
	for (size_t i = 0; i < ARRAY_SIZE(statuses); i++) {
		aws_creds c;
		provider_status st = {0};
		p11k_err rc = aws_sts_parse_reply(statuses[i], xml, size, &c, &st);
		FUZZ_CHECK(rc == P11K_OK || rc == P11K_ERR_BAD_REPLY ||
			   rc == P11K_ERR_ACCESS_DENIED || rc == P11K_ERR_THROTTLED ||
			   rc == P11K_ERR_UNREACHABLE || rc == P11K_ERR_NOMEM);
		FUZZ_CHECK(memchr(st.message, '\0', sizeof(st.message)));
		FUZZ_CHECK(memchr(st.error_name, '\0', sizeof(st.error_name)));
		FUZZ_CHECK(memchr(st.request_id, '\0', sizeof(st.request_id)));
		if (rc == P11K_OK) {
			FUZZ_CHECK(statuses[i] == 200);
			FUZZ_CHECK(memchr(c.access_key, '\0', sizeof(c.access_key)));
			FUZZ_CHECK(c.access_key[0] && c.secret_key && c.secret_key[0] &&
				   c.session_token && c.session_token[0]);
			aws_creds_clear(&c);
		} else {
			FUZZ_CHECK(!c.secret_key && !c.session_token);
		}
		FUZZ_CHECK(sec_in_use() == before);
	}
	free(xml);
	return 0;
}
