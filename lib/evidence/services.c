/* SPDX-License-Identifier: Apache-2.0 */
#include "evidence/services.h"

#include <string.h>

#include "log/log.h"
#include "util/util.h"

int services_setup(const struct services_config *c, const char *agent_id, TPM2_HANDLE payload_key,
		   const char *state_dir, struct services *s, struct evidence_config *ev)
{
	int r;

	memset(s, 0, sizeof(*s));
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
