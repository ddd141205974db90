/* SPDX-License-Identifier: Apache-2.0 */
/* The secret file reader (secretfile.h). */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "secretfile.h"
#include "common/secmem.h"

p11k_err secretfile_read(const char *path, size_t max, const char *what, char **out,
			 size_t *outlen, provider_status *st)
{
	char *buf = NULL;
	size_t len = 0;
	struct stat sb;
	p11k_err rc = P11K_OK;
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	*out = NULL;
	if (fd < 0) {
		if (errno == ENOENT || errno == ENOTDIR)
			return P11K_ERR_KEY_NOT_FOUND;
		provider_status_set(st, P11K_ERR_ACCESS_DENIED, "cannot open %s %.120s: %s",
				    what, path, strerror(errno));
		return P11K_ERR_ACCESS_DENIED;
	}
	if (fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode)) {
		provider_status_set(st, P11K_ERR_ACCESS_DENIED,
				    "%s %.120s is not a regular file", what, path);
		rc = P11K_ERR_ACCESS_DENIED;
	} else if ((uint64_t)sb.st_size > max) {
		provider_status_set(st, P11K_ERR_ACCESS_DENIED,
				    "%s %.120s is larger than %zu bytes", what, path, max);
		rc = P11K_ERR_ACCESS_DENIED;
	}
	/* Sized by the file (secure memory is locked memory), then held to
	 * that size: a file that grows while we read is refused. */
	size_t cap = rc == P11K_OK ? (size_t)sb.st_size : 0;
	if (rc == P11K_OK && !(buf = sec_alloc(cap + 1)))
		rc = P11K_ERR_NOMEM;
	while (rc == P11K_OK) {
		char extra;
		ssize_t n = len < cap ? read(fd, buf + len, cap - len) : read(fd, &extra, 1);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			provider_status_set(st, P11K_ERR_ACCESS_DENIED, "cannot read %s %.120s: %s",
					    what, path, strerror(errno));
			rc = P11K_ERR_ACCESS_DENIED;
		} else if (n == 0) {
			break;
		} else if (len == cap) {
			provider_status_set(st, P11K_ERR_ACCESS_DENIED,
					    "%s %.120s changed while being read", what, path);
			rc = P11K_ERR_ACCESS_DENIED;
		} else {
			len += (size_t)n;
		}
	}
	close(fd);
	if (rc != P11K_OK) {
		sec_free(buf);
		return rc;
	}
	buf[len] = '\0';
	*out = buf;
	if (outlen)
		*outlen = len;
	return P11K_OK;
}

size_t secretfile_trim_end(char *text, size_t len)
{
	while (len && (text[len - 1] == '\n' || text[len - 1] == '\r' || text[len - 1] == ' ' ||
		       text[len - 1] == '\t'))
		text[--len] = '\0';
	return len;
}
