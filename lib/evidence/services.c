/* SPDX-License-Identifier: Apache-2.0 */
#include "evidence/services.h"

#include <errno.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "log/log.h"
#include "util/util.h"

int services_setup(const struct services_config *c, const char *agent_id, TPM2_HANDLE payload_key,
		   const char *state_dir, struct services *s, struct evidence_config *ev)
{
	struct stat st;
	int r;

	memset(s, 0, sizeof(*s));
	/* payloads and revocation keep their files here: made now, so a missing
	 * or unusable directory stops the agent before it serves, not at a
	 * delivery */
	if (mkdir(state_dir, 0700) < 0 && errno != EEXIST)
		return kq_err(-errno, "[agent] state_dir %s: %s", state_dir, strerror(errno));
	if (stat(state_dir, &st) < 0 || !S_ISDIR(st.st_mode) || access(state_dir, W_OK | X_OK) < 0)
		return kq_err(-ENOTDIR, "[agent] state_dir %s: not a writable directory", state_dir);
	s->payload = (struct payload_agent){
		.agent_id = agent_id, .key_handle = payload_key, .state_dir = state_dir,
		.out_dir = c->payload_dir ? c->payload_dir : SERVICES_PAYLOAD_DIR_DEFAULT,
		.script = c->payload_script,
	};
	ev->payload = &s->payload;
	ev->revocation = NULL;
	if (c->revocation_key) {
		r = revocation_load_key(c->revocation_key, &s->revocation.verifier_key);
		if (r < 0)
			return kq_err_ctx(r, "[revocation] verifier_key: ");
		s->revocation.state_dir = state_dir;
		s->revocation.actions_dir = c->revocation_actions;
		s->revocation.max_age = c->revocation_max_age ? (int64_t)c->revocation_max_age : REVOCATION_MAX_AGE_DEFAULT;
		ev->revocation = &s->revocation;
	}
	return 0;
}

void services_clear(struct services *s)
{
	EVP_PKEY_free(s->revocation.verifier_key);
	memset(s, 0, sizeof(*s));
}
