/* SPDX-License-Identifier: Apache-2.0 */
/*
 * PKCS #11 entry points: the gate and the function lists. Each C_* enters
 * through one gate (initialized? lock), finds its session under the lock,
 * checks state, calls into slots/ or the mechanism table, and leaves
 * through one exit that logs failures. The C_* functions themselves live
 * in session.c, objects.c, keys.c, crypt.c and msg.c (gate.h says which);
 * this file has the gate, fork handling, C_Initialize, C_Finalize,
 * C_GetInfo and the function lists. Only C_GetFunctionList,
 * C_GetInterfaceList and C_GetInterface are exported (p11kms.map);
 * everything else is reached through the function lists.
 */
#include <errno.h>
#include <fcntl.h>
#include <sys/uio.h>
#include <unistd.h>

#include <openssl/crypto.h>

#include "gate.h"
#include "slots/revalthread.h"

#define EXPORT __attribute__((visibility("default")))

module_t mod;

/* --- fork: a child starts uninitialized (PKCS #11 v2.40 6.7.7) ------------
 *
 * One pthread_atfork registration for the whole module, so the order in
 * which its locks are taken around fork() is written in one place
 * (docs/REVALIDATION.md, "Processes, threads, fork"). Prepare takes, in
 * this order: THE lock (slots.lock); every open store's lock (the IV
 * counters run SQLite under it without THE lock); secmem's lock; the
 * log's lock. The last two are leaves: whoever holds one takes no other
 * lock, so taking them last cannot invert an order. Then no thread of the
 * module is inside the token table, SQLite, secmem or the log writer when
 * the process forks. The parent releases them in reverse. The child
 * releases what its only thread holds, and forgets everything else
 * without touching it: sessions, stores (it never uses its parent's
 * SQLite connections; its first C_Initialize closes them, below),
 * providers, the OpenSSL context (a thread that is gone may hold its
 * locks), the revalidation thread (it does not exist here). Key pages are
 * zero in the child (MADV_WIPEONFORK). */

static bool finalizing; /* C_Finalize is waiting for the revalidation thread */

/* In a forked child: the parent's token table, left behind. The child's
 * first C_Initialize closes its stores' SQLite connections, which were
 * idle at fork (prepare held every store's lock): SQLite keeps one record
 * of a file's locks per process, so while the inherited connection is
 * open, the child's own connection to the same store would count as
 * holding the parent's file locks and take none. */
static token_t *orphans;
static size_t norphans;

static void close_orphans(void)
{
	for (size_t i = 0; i < norphans; i++)
		store_close(orphans[i].store);
	orphans = NULL; /* the rest stays leaked */
	norphans = 0;
}

static void fork_prepare(void)
{
	LOCK();
	for (size_t i = 0; i < slots.ntokens; i++)
		if (slots.tokens[i].store)
			store_fork_hold(slots.tokens[i].store);
	sec_fork_prepare();
	log_fork_prepare();
}
static void fork_parent(void)
{
	log_fork_parent();
	sec_fork_parent();
	for (size_t i = slots.ntokens; i-- > 0;)
		if (slots.tokens[i].store)
			store_fork_release(slots.tokens[i].store);
	UNLOCK();
}
static void fork_child(void)
{
	log_fork_child();
	sec_fork_child();
	crypto_fork_child();
	revalthread_fork_child();
	for (size_t i = 0; i < slots.ntokens; i++)
		if (slots.tokens[i].store)
			store_fork_child(slots.tokens[i].store);
	mod.initialized = false;
	mod.cfg = NULL;
	finalizing = false;
	if (slots.tokens) {
		orphans = slots.tokens;
		norphans = slots.ntokens;
	}
	slots.tokens = NULL;
	slots.ntokens = 0;
	hmap_init(&mod.sessions);
	hmap_init(&slots.objects);
	UNLOCK();
}
static pthread_once_t fork_once = PTHREAD_ONCE_INIT;
static void fork_register(void)
{
	pthread_atfork(fork_prepare, fork_parent, fork_child);
}

/* --- the gate ----------------------------------------------------------- */

CK_RV(enter)(void)
{
	LOCK();
	/* A forked child is reset by fork_child(): no getpid() per call. */
	if (!mod.initialized || finalizing) {
		UNLOCK();
		return CKR_CRYPTOKI_NOT_INITIALIZED;
	}
	return CKR_OK;
}

/* The answers consumers get when they probe (pkcs11-tool, PyKCS11, Java
 * and NSS ask for every attribute a class might have, and for mechanisms
 * the slot may not offer; NSS offers every token a seed): expected
 * outcomes, not failures an operator should read. */
static bool probe_answer(const char *fn, CK_RV rv)
{
	switch (rv) {
	case CKR_ATTRIBUTE_TYPE_INVALID:
	case CKR_ATTRIBUTE_SENSITIVE:
		return strcmp(fn, "GetAttributeValue") == 0;
	case CKR_MECHANISM_INVALID:
		return strcmp(fn, "GetMechanismInfo") == 0;
	case CKR_RANDOM_SEED_NOT_SUPPORTED: /* NSS seeds every token it opens */
		return true;
	default:
		return false;
	}
}

/* The one exit: failures are logged with the function's name, at info;
 * probing's answers at debug; successes and short buffers at trace. */
CK_RV leave(const char *fn, CK_RV rv)
{
	audit_leave(fn); /* the audit log's "function" (slots/audit.h) */
	if (rv == CKR_OK || rv == CKR_BUFFER_TOO_SMALL)
		log_trace("api", "%s: %s", fn, ckr_name(rv));
	else if (probe_answer(fn, rv))
		log_debug("api", "%s: %s", fn, ckr_name(rv));
	else
		log_info("api", "%s: %s", fn, ckr_name(rv));
	return rv;
}

/* --- general purpose ----------------------------------------------------- */

static void tokens_free(void)
{
	for (size_t i = 0; i < slots.ntokens; i++) {
		token_t *t = &slots.tokens[i];
		token_forget_objects_inlock(t);
		token_kms_objects_free_inlock(t);
		size_t it = 0;
		uint64_t k;
		void *v;
		while (hmap_next(&t->session_objs, &it, &k, &v))
			obj_free(v);
		hmap_free(&t->session_objs);
		hmap_free(&t->by_rowid);
		sec_free(t->tk);
		store_close(t->store);
		if (t->prov)
			t->cfg->ops->destroy(t->prov);
	}
	free(slots.tokens);
	slots.tokens = NULL;
	slots.ntokens = 0;
}

/* The init string's bound: p11-kit's x-init-reserved lines are short. */
#define INIT_RESERVED_MAX 4096

/* Copy the string at p into buf without ever faulting: PKCS #11 says
 * pReserved must be NULL, but p11-kit and libp11 pass an init string
 * there, and a caller may pass anything (a conformance suite passes
 * (void *)1). process_vm_readv on this process reads what is mapped and
 * answers EFAULT for what is not, page by page (a pipe where it is not
 * allowed). false: not a readable, NUL-terminated text of fewer than
 * INIT_RESERVED_MAX bytes. */
/* Where process_vm_readv is not allowed (a seccomp sandbox): the kernel
 * also answers EFAULT rather than faulting when write() is handed memory
 * that is not mapped. -1 when src is unreadable or no pipe can be made. */
static ssize_t copy_through_pipe(const void *src, char *dst, size_t n)
{
	int fd[2];
	if (pipe2(fd, O_CLOEXEC) != 0)
		return -1;
	ssize_t w = write(fd[1], src, n); /* n <= a page: fits the pipe */
	ssize_t r = w > 0 ? read(fd[0], dst, (size_t)w) : -1;
	close(fd[0]);
	close(fd[1]);
	return r;
}

static bool read_init_string(const void *p, char buf[INIT_RESERVED_MAX])
{
	const long page = sysconf(_SC_PAGESIZE) > 0 ? sysconf(_SC_PAGESIZE) : 4096;
	size_t got = 0;
	while (got < INIT_RESERVED_MAX) {
		uintptr_t at = (uintptr_t)p + got;
		size_t n = (size_t)page - at % (size_t)page; /* to the page's end */
		if (n > INIT_RESERVED_MAX - got)
			n = INIT_RESERVED_MAX - got;
		struct iovec local = {buf + got, n}, remote = {(void *)at, n};
		ssize_t r = process_vm_readv(getpid(), &local, 1, &remote, 1, 0);
		if (r < 0 && errno != EFAULT)
			r = copy_through_pipe((const void *)at, buf + got, n);
		if (r <= 0)
			return false; /* unreadable, or no way to check: refuse */
		void *nul = memchr(buf + got, 0, (size_t)r);
		got += (size_t)r;
		if (nul) {
			for (const char *c = buf; *c; c++)
				if ((unsigned char)*c < 0x20 && *c != '\t' && *c != '\n')
					return false;
			return true;
		}
	}
	return false;
}

/* *reserved: NULL, or the init string copied into buf. *threads: false
 * when the caller said CKF_LIBRARY_CANT_CREATE_OS_THREADS. */
static CK_RV check_init_args(CK_VOID_PTR p, char buf[INIT_RESERVED_MAX], const char **reserved,
			     bool *threads)
{
	*reserved = NULL;
	*threads = true;
	if (!p)
		return CKR_OK;
	CK_C_INITIALIZE_ARGS *a = p;
	/* The module can work without its own threads: the revalidation
	 * checks then run in the callers' threads (docs/REVALIDATION.md). */
	*threads = !(a->flags & CKF_LIBRARY_CANT_CREATE_OS_THREADS);
	int given = !!a->CreateMutex + !!a->DestroyMutex + !!a->LockMutex +
		    !!a->UnlockMutex;
	if (given != 0 && given != 4) {
		log_error("api", "C_Initialize: mutex callbacks must be given all or none");
		return CKR_ARGUMENTS_BAD;
	}
	/* The module locks with pthreads; it cannot use only the caller's. */
	if (given == 4 && !(a->flags & CKF_OS_LOCKING_OK)) {
		log_error("api", "C_Initialize: only OS locking is supported");
		return CKR_CANT_LOCK;
	}
	/* p11-kit passes the module's x-init-reserved string here. */
	if (a->pReserved) {
		if (!read_init_string(a->pReserved, buf)) {
			log_error("api", "C_Initialize: pReserved is neither NULL nor a readable "
					 "init string (text, NUL-terminated, under %d bytes)",
				  INIT_RESERVED_MAX);
			return CKR_ARGUMENTS_BAD;
		}
		*reserved = buf;
	}
	return CKR_OK;
}

static CK_RV ep_Initialize(CK_VOID_PTR pInitArgs)
{
	const char *reserved;
	char init_string[INIT_RESERVED_MAX];
	bool threads;
	pthread_once(&fork_once, fork_register);
	LOCK();
	if (mod.initialized && mod.pid == getpid()) {
		UNLOCK();
		return LEAVE(CKR_CRYPTOKI_ALREADY_INITIALIZED);
	}
	log_apply_env(); /* first: a refusal of the arguments is logged where asked */
	CK_RV rv = check_init_args(pInitArgs, init_string, &reserved, &threads);
	if (rv != CKR_OK) {
		UNLOCK();
		return LEAVE(rv);
	}
	close_orphans();
	hmap_init(&mod.sessions);
	hmap_init(&slots.objects);
	mod.next_session = slots.next_object = 0;
	config_t *cfg = NULL;
	rv = config_load(reserved, &cfg);
	if (rv == CKR_OK) {
		log_configure(cfg->log_level, cfg->log_dest);
		log_apply_env();
		if (!crypto_init())
			rv = CKR_GENERAL_ERROR;
	}
	if (rv == CKR_OK && cfg->nproviders &&
	    !(slots.tokens = calloc(cfg->nproviders, sizeof(token_t))))
		rv = CKR_HOST_MEMORY;
	for (size_t i = 0; rv == CKR_OK && i < cfg->nproviders; i++) {
		token_t *t = &slots.tokens[i];
		char why[512] = "";
		t->cfg = &cfg->providers[i];
		t->slot_id = t->cfg->slot_id;
		t->login = NO_LOGIN;
		hmap_init(&t->by_rowid);
		hmap_init(&t->session_objs);
		slots.ntokens = i + 1;
		p11k_err e = t->cfg->ops->create(t->cfg->obj, cfg->path, &t->prov, why,
						 sizeof(why));
		if (e != P11K_OK) {
			log_error("config", "%s: provider \"%s\": %s", cfg->path,
				  t->cfg->name, why[0] ? why : p11k_err_name(e));
			rv = CKR_FUNCTION_FAILED;
		}
		if (rv == CKR_OK)
			rv = token_kms_objects_create_inlock(t);
	}
	if (rv != CKR_OK) {
		tokens_free();
		config_free(cfg);
		hmap_free(&slots.objects);
		UNLOCK();
		return LEAVE(rv);
	}
	mod.cfg = cfg;
	mod.pid = getpid();
	mod.initialized = true;
	revalthread_configure_inlock(threads);
	log_info("api", "initialized from %s: %zu slot(s)", cfg->path, slots.ntokens);
	if (!threads)
		log_info("api", "CKF_LIBRARY_CANT_CREATE_OS_THREADS: the sealing keys are "
				"checked in the callers' threads");
	UNLOCK();
	return LEAVE(CKR_OK);
}

static CK_RV ep_Finalize(CK_VOID_PTR pReserved)
{
	if (pReserved)
		return LEAVE(CKR_ARGUMENTS_BAD);
	GUARD(enter());
	/* First the revalidation thread: it uses the tokens. enter() refuses
	 * every call meanwhile (the lock is released while it ends). */
	finalizing = true;
	revalthread_stop();
	finalizing = false;
	size_t it = 0;
	uint64_t k;
	void *v;
	while (hmap_next(&mod.sessions, &it, &k, &v)) {
		session_t *s = v;
		s->closed = true;
		sess_unref(s); /* the table's reference */
	}
	hmap_free(&mod.sessions);
	hmap_free(&slots.objects);
	tokens_free();
	config_free(mod.cfg);
	mod.cfg = NULL;
	mod.initialized = false;
	crypto_fini();
	UNLOCK();
	log_reset();
	return CKR_OK;
}

static void fill_info(CK_INFO_PTR p, CK_BYTE major, CK_BYTE minor)
{
	memset(p, 0, sizeof(*p));
	p->cryptokiVersion.major = major;
	p->cryptokiVersion.minor = minor;
	pad_copy(p->manufacturerID, sizeof(p->manufacturerID), "p11kms project");
	pad_copy(p->libraryDescription, sizeof(p->libraryDescription),
		 "p11kms: KMS keys over PKCS#11"); /* 32 at most */
	p->libraryVersion.major = P11KMS_VERSION_MAJOR;
	p->libraryVersion.minor = P11KMS_VERSION_MINOR;
}

static CK_RV ep_GetInfo(CK_INFO_PTR pInfo)
{
	if (!pInfo)
		return LEAVE(CKR_ARGUMENTS_BAD);
	GUARD(enter());
	UNLOCK();
	fill_info(pInfo, 2, 40);
	return CKR_OK;
}

static CK_RV ep_GetInfo3(CK_INFO_PTR pInfo)
{
	if (!pInfo)
		return LEAVE(CKR_ARGUMENTS_BAD);
	GUARD(enter());
	UNLOCK();
	fill_info(pInfo, 3, 0);
	return CKR_OK;
}

/* --- functions not offered ---------------------------------------------- */

#define NOT_SUPPORTED(name, ...)                                               \
	static CK_RV name(__VA_ARGS__)                                         \
	{                                                                      \
		return CKR_FUNCTION_NOT_SUPPORTED;                             \
	}

NOT_SUPPORTED(ep_GetOperationState, CK_SESSION_HANDLE a, CK_BYTE_PTR b, CK_ULONG_PTR c)
NOT_SUPPORTED(ep_SetOperationState, CK_SESSION_HANDLE a, CK_BYTE_PTR b, CK_ULONG c,
	      CK_OBJECT_HANDLE d, CK_OBJECT_HANDLE e)
NOT_SUPPORTED(ep_SignRecoverInit, CK_SESSION_HANDLE a, CK_MECHANISM_PTR b,
	      CK_OBJECT_HANDLE c)
NOT_SUPPORTED(ep_SignRecover, CK_SESSION_HANDLE a, CK_BYTE_PTR b, CK_ULONG c,
	      CK_BYTE_PTR d, CK_ULONG_PTR e)
NOT_SUPPORTED(ep_VerifyRecoverInit, CK_SESSION_HANDLE a, CK_MECHANISM_PTR b,
	      CK_OBJECT_HANDLE c)
NOT_SUPPORTED(ep_VerifyRecover, CK_SESSION_HANDLE a, CK_BYTE_PTR b, CK_ULONG c,
	      CK_BYTE_PTR d, CK_ULONG_PTR e)
NOT_SUPPORTED(ep_DigestEncryptUpdate, CK_SESSION_HANDLE a, CK_BYTE_PTR b, CK_ULONG c,
	      CK_BYTE_PTR d, CK_ULONG_PTR e)
NOT_SUPPORTED(ep_DecryptDigestUpdate, CK_SESSION_HANDLE a, CK_BYTE_PTR b, CK_ULONG c,
	      CK_BYTE_PTR d, CK_ULONG_PTR e)
NOT_SUPPORTED(ep_SignEncryptUpdate, CK_SESSION_HANDLE a, CK_BYTE_PTR b, CK_ULONG c,
	      CK_BYTE_PTR d, CK_ULONG_PTR e)
NOT_SUPPORTED(ep_DecryptVerifyUpdate, CK_SESSION_HANDLE a, CK_BYTE_PTR b, CK_ULONG c,
	      CK_BYTE_PTR d, CK_ULONG_PTR e)
NOT_SUPPORTED(ep_GenerateKeyPair, CK_SESSION_HANDLE a, CK_MECHANISM_PTR b,
	      CK_ATTRIBUTE_PTR c, CK_ULONG d, CK_ATTRIBUTE_PTR e, CK_ULONG f,
	      CK_OBJECT_HANDLE_PTR g, CK_OBJECT_HANDLE_PTR h)
NOT_SUPPORTED(ep_DeriveKey, CK_SESSION_HANDLE a, CK_MECHANISM_PTR b, CK_OBJECT_HANDLE c,
	      CK_ATTRIBUTE_PTR d, CK_ULONG e, CK_OBJECT_HANDLE_PTR f)
NOT_SUPPORTED(ep_LoginUser, CK_SESSION_HANDLE a, CK_USER_TYPE b, CK_UTF8CHAR_PTR c,
	      CK_ULONG d, CK_UTF8CHAR_PTR e, CK_ULONG f)
NOT_SUPPORTED(ep_MessageSignInit, CK_SESSION_HANDLE a, CK_MECHANISM_PTR b,
	      CK_OBJECT_HANDLE c)
NOT_SUPPORTED(ep_MessageSignVerifyFinal, CK_SESSION_HANDLE a)
NOT_SUPPORTED(ep_SignMessage, CK_SESSION_HANDLE a, CK_VOID_PTR b, CK_ULONG c,
	      CK_BYTE_PTR d, CK_ULONG e, CK_BYTE_PTR f, CK_ULONG_PTR g)
NOT_SUPPORTED(ep_SignMessageBegin, CK_SESSION_HANDLE a, CK_VOID_PTR b, CK_ULONG c)
NOT_SUPPORTED(ep_SignMessageNext, CK_SESSION_HANDLE a, CK_VOID_PTR b, CK_ULONG c,
	      CK_BYTE_PTR d, CK_ULONG e, CK_BYTE_PTR f, CK_ULONG_PTR g)
NOT_SUPPORTED(ep_VerifyMessage, CK_SESSION_HANDLE a, CK_VOID_PTR b, CK_ULONG c,
	      CK_BYTE_PTR d, CK_ULONG e, CK_BYTE_PTR f, CK_ULONG g)
NOT_SUPPORTED(ep_VerifyMessageBegin, CK_SESSION_HANDLE a, CK_VOID_PTR b, CK_ULONG c)
NOT_SUPPORTED(ep_VerifyMessageNext, CK_SESSION_HANDLE a, CK_VOID_PTR b, CK_ULONG c,
	      CK_BYTE_PTR d, CK_ULONG e, CK_BYTE_PTR f, CK_ULONG g)

static CK_RV ep_GetFunctionStatus(CK_SESSION_HANDLE h)
{
	(void)h;
	return CKR_FUNCTION_NOT_PARALLEL;
}

static CK_RV ep_CancelFunction(CK_SESSION_HANDLE h)
{
	(void)h;
	return CKR_FUNCTION_NOT_PARALLEL;
}

/* --- function lists and interfaces ---------------------------------------- */

static CK_RV ep_GetFunctionList(CK_FUNCTION_LIST_PTR_PTR pp);
static CK_RV ep_GetInterfaceList(CK_INTERFACE_PTR p, CK_ULONG_PTR n);
static CK_RV ep_GetInterface(CK_UTF8CHAR_PTR name, CK_VERSION_PTR v,
			     CK_INTERFACE_PTR_PTR pp, CK_FLAGS flags);

#define COMMON_FUNCTIONS                                                        \
	ep_Initialize, ep_Finalize, GETINFO, ep_GetFunctionList, ep_GetSlotList,    \
		ep_GetSlotInfo, ep_GetTokenInfo, ep_GetMechanismList,               \
		ep_GetMechanismInfo, ep_InitToken, ep_InitPIN, ep_SetPIN,           \
		ep_OpenSession, ep_CloseSession, ep_CloseAllSessions,               \
		ep_GetSessionInfo, ep_GetOperationState, ep_SetOperationState,      \
		ep_Login, ep_Logout, ep_CreateObject, ep_CopyObject,                \
		ep_DestroyObject, ep_GetObjectSize, ep_GetAttributeValue,           \
		ep_SetAttributeValue, ep_FindObjectsInit, ep_FindObjects,           \
		ep_FindObjectsFinal, ep_EncryptInit, ep_Encrypt, ep_EncryptUpdate,  \
		ep_EncryptFinal, ep_DecryptInit, ep_Decrypt, ep_DecryptUpdate,      \
		ep_DecryptFinal, ep_DigestInit, ep_Digest, ep_DigestUpdate,         \
		ep_DigestKey, ep_DigestFinal, ep_SignInit, ep_Sign, ep_SignUpdate,  \
		ep_SignFinal, ep_SignRecoverInit, ep_SignRecover, ep_VerifyInit,    \
		ep_Verify, ep_VerifyUpdate, ep_VerifyFinal, ep_VerifyRecoverInit,   \
		ep_VerifyRecover, ep_DigestEncryptUpdate, ep_DecryptDigestUpdate,   \
		ep_SignEncryptUpdate, ep_DecryptVerifyUpdate, ep_GenerateKey,       \
		ep_GenerateKeyPair, ep_WrapKey, ep_UnwrapKey, ep_DeriveKey,         \
		ep_SeedRandom, ep_GenerateRandom, ep_GetFunctionStatus,             \
		ep_CancelFunction, ep_WaitForSlotEvent

#define GETINFO ep_GetInfo
static CK_FUNCTION_LIST functions_v2 = {{2, 40}, COMMON_FUNCTIONS};
#undef GETINFO
#define GETINFO ep_GetInfo3
static CK_FUNCTION_LIST_3_0 functions_v3 = {
	{3, 0}, COMMON_FUNCTIONS, ep_GetInterfaceList, ep_GetInterface, ep_LoginUser,
	ep_SessionCancel, ep_MessageEncryptInit, ep_EncryptMessage,
	ep_EncryptMessageBegin, ep_EncryptMessageNext, ep_MessageEncryptFinal,
	ep_MessageDecryptInit, ep_DecryptMessage, ep_DecryptMessageBegin,
	ep_DecryptMessageNext, ep_MessageDecryptFinal, ep_MessageSignInit,
	ep_SignMessage, ep_SignMessageBegin, ep_SignMessageNext,
	ep_MessageSignVerifyFinal, ep_MessageSignInit, ep_VerifyMessage,
	ep_VerifyMessageBegin, ep_VerifyMessageNext, ep_MessageSignVerifyFinal};
#undef GETINFO

static CK_INTERFACE interfaces[] = {
	{(CK_CHAR *)"PKCS 11", &functions_v3, 0},
	{(CK_CHAR *)"PKCS 11", &functions_v2, 0},
};

static CK_RV ep_GetFunctionList(CK_FUNCTION_LIST_PTR_PTR pp)
{
	if (!pp)
		return CKR_ARGUMENTS_BAD;
	*pp = &functions_v2;
	return CKR_OK;
}

static CK_RV ep_GetInterfaceList(CK_INTERFACE_PTR p, CK_ULONG_PTR n)
{
	if (!n)
		return CKR_ARGUMENTS_BAD;
	CK_RV rv = CKR_OK;
	if (p && *n < ARRAY_SIZE(interfaces))
		rv = CKR_BUFFER_TOO_SMALL;
	else if (p)
		memcpy(p, interfaces, sizeof(interfaces));
	*n = ARRAY_SIZE(interfaces);
	return rv;
}

static CK_RV ep_GetInterface(CK_UTF8CHAR_PTR name, CK_VERSION_PTR v,
			     CK_INTERFACE_PTR_PTR pp, CK_FLAGS flags)
{
	if (!pp)
		return CKR_ARGUMENTS_BAD;
	for (size_t i = 0; i < ARRAY_SIZE(interfaces); i++) {
		CK_INTERFACE *it = &interfaces[i];
		const CK_VERSION *iv = it->pFunctionList;
		if (name && strcmp((const char *)name, (const char *)it->pInterfaceName))
			continue;
		if (v && (v->major != iv->major || v->minor != iv->minor))
			continue;
		if ((it->flags & flags) != flags)
			continue;
		*pp = it;
		return CKR_OK;
	}
	return CKR_ARGUMENTS_BAD;
}

EXPORT CK_RV C_GetFunctionList(CK_FUNCTION_LIST_PTR_PTR ppFunctionList)
{
	return ep_GetFunctionList(ppFunctionList);
}

EXPORT CK_RV C_GetInterfaceList(CK_INTERFACE_PTR pInterfacesList, CK_ULONG_PTR pulCount)
{
	return ep_GetInterfaceList(pInterfacesList, pulCount);
}

EXPORT CK_RV C_GetInterface(CK_UTF8CHAR_PTR pInterfaceName, CK_VERSION_PTR pVersion,
			    CK_INTERFACE_PTR_PTR ppInterface, CK_FLAGS flags)
{
	return ep_GetInterface(pInterfaceName, pVersion, ppInterface, flags);
}
