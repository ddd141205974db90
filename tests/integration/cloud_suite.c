/* SPDX-License-Identifier: Apache-2.0 */
#include "cloud_suite.h"

#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "emu.h"

#define S (*c->session)
#define CTL "emuctl.py" /* counters, faults and the request log of any cloud */

static long count(const cloud_e2e *c, const char *op)
{
	return emu_ctl_long(CTL, "count %s %s", c->service, op);
}

/* A new process initializes, logs in (one KMS call: the unseal) and uses
 * a token key made before: it encrypts as before. */
void cloud_token_survives_restart(void **state)
{
	const cloud_e2e *c = *state;
	CK_OBJECT_HANDLE k = h_aes_key(S, 32, CK_TRUE, "db-master");
	uint8_t c1[32], c2[32];
	CK_ULONG l1 = sizeof(c1), l2 = sizeof(c2);
	assert_ok(h_encrypt_probe(S, k, c1, &l1));
	assert_ok(p11->C_Finalize(NULL));
	emu_ctl(CTL, "reset-counters");
	int fds[2];
	assert_int_equal(pipe(fds), 0);
	pid_t pid = fork();
	if (pid == 0) {
		close(fds[0]);
		CK_RV irv = h_initialize(c->env);
		if (irv != CKR_OK) {
			fprintf(stderr, "C_Initialize: 0x%lx\n", (unsigned long)irv);
			_exit(2);
		}
		CK_SESSION_HANDLE s;
		if (p11->C_OpenSession(c->env->slot, CKF_SERIAL_SESSION, NULL, NULL, &s) ||
		    p11->C_Login(s, CKU_USER, (CK_UTF8CHAR_PTR)USER_PIN, strlen(USER_PIN)))
			_exit(3);
		CK_ATTRIBUTE q = {CKA_LABEL, "db-master", 9};
		CK_OBJECT_HANDLE h;
		CK_ULONG n = 0;
		p11->C_FindObjectsInit(s, &q, 1);
		p11->C_FindObjects(s, &h, 1, &n);
		p11->C_FindObjectsFinal(s);
		if (n != 1 || h_encrypt_probe(s, h, c2, &l2) != CKR_OK)
			_exit(4);
		if (write(fds[1], c2, l2) != (ssize_t)l2)
			_exit(5);
		p11->C_Finalize(NULL);
		_exit(0);
	}
	close(fds[1]);
	ssize_t got = read(fds[0], c2, sizeof(c2));
	close(fds[0]);
	int st;
	waitpid(pid, &st, 0);
	assert_int_equal(WEXITSTATUS(st), 0);
	assert_int_equal(got, (ssize_t)l1);
	assert_memory_equal(c1, c2, l1);
	assert_int_equal(count(c, c->unseal_op), 1); /* the unseal */
	assert_int_equal(count(c, c->seal_op), 0);
	assert_ok(h_initialize(c->env));
}

/* The module's revalidation thread asks the KMS (revalidate_seconds is 1)
 * and, retrying, finds it unreachable: wait for its verdict in the log (a
 * bounded wait; the check never runs in the test's own calls). */
static void make_unreachable(const cloud_e2e *c, const char *verdict)
{
	emu_ctl(CTL, "fault '{\"service\": \"%s\", \"op\": \"%s\", %s, \"count\": 0}'",
		c->service, c->describe_op, c->unreachable);
	for (int i = 0; i < 300 && !h_log_contains(c->env, verdict); i++)
		usleep(100000);
}

void cloud_unreachable_within_grace(void **state)
{
	const cloud_e2e *c = *state;
	CK_OBJECT_HANDLE k = h_aes_key(S, 32, CK_TRUE, "k");
	make_unreachable(c, "of grace");
	uint8_t ct[32];
	CK_ULONG cl = sizeof(ct);
	assert_ok(h_encrypt_probe(S, k, ct, &cl)); /* unreachable, but within grace */
	assert_true(h_log_contains(c->env, "grace"));
	emu_ctl(CTL, "clear-faults");
}

void cloud_unreachable_fails_closed(void **state)
{
	const cloud_e2e *c = *state;
	CK_OBJECT_HANDLE k = h_aes_key(S, 32, CK_TRUE, "k");
	make_unreachable(c, "longer than the grace period");
	uint8_t ct[32];
	CK_ULONG cl = sizeof(ct);
	assert_rv(h_encrypt_probe(S, k, ct, &cl), CKR_DEVICE_ERROR);
	assert_int_equal(h_deverr(S), P11KMS_DEVERR_UNREACHABLE);
	assert_true(h_log_contains(c->env, "longer than the grace period"));
	if (c->unreachable_log)
		assert_true(h_log_contains(c->env, c->unreachable_log));
	emu_ctl(CTL, "clear-faults");
}

/* Remote calls from several threads run side by side: neither the module
 * nor the provider's caches hold a lock across the network. Shown with
 * injected latency and the emulator's request log (overlapping requests),
 * not with timings. */
void cloud_threads_do_not_serialize(void **state)
{
	enum { N = 4 };
	const cloud_e2e *c = *state;
	CK_OBJECT_HANDLE kms = h_find_label(S, c->kms_label);
	CK_OBJECT_HANDLE dk = h_aes_key(S, 32, CK_FALSE, "dk");
	long since = emu_ctl_long(CTL, "log-seq");
	emu_ctl(CTL, "fault '{\"service\": \"%s\", \"op\": \"%s\", \"kind\": \"latency\", "
			"\"delay_ms\": 700, \"count\": 0}'",
		c->service, c->seal_op);
	h_wrap_result w[N];
	h_wrap_in_threads(c->env->slot, kms, dk, w, N);
	emu_ctl(CTL, "clear-faults");
	CK_OBJECT_CLASS cls = CKO_SECRET_KEY;
	CK_KEY_TYPE kt = CKK_AES;
	CK_ATTRIBUTE t[] = {{CKA_CLASS, &cls, sizeof(cls)}, {CKA_KEY_TYPE, &kt, sizeof(kt)}};
	CK_MECHANISM m = {CKM_P11KMS_KMS_ENVELOPE, NULL, 0};
	for (int i = 0; i < N; i++) {
		assert_ok(w[i].rv);
		CK_OBJECT_HANDLE back;
		assert_ok(p11->C_UnwrapKey(S, &m, kms, w[i].blob, w[i].len, t, 2, &back));
	}
	long overlap = emu_ctl_long(CTL, "max-overlap %ld %s %s", since, c->service, c->seal_op);
	print_message("at most %ld %s requests in flight at once\n", overlap, c->seal_op);
	assert_true(overlap >= 2);
}
