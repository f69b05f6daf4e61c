/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Reports to the host agent (docs/vtpm.md, op "vm"). The map keeps a
 * reported flag per row, so a host agent that is down or restarting loses
 * nothing: whatever it has not acknowledged is sent again on the next change
 * and, in `run`, every retry_interval.
 */
#include "vtpm-mgr.h"

#include "local/local.h"
#include "log/log.h"

#define MOD "report"

struct json_object *vm_report_request(const struct vm_row *r)
{
	struct json_object *o = json_object_new_object();

	if (!o)
		return NULL;
	if (json_object_object_add(o, "op", json_object_new_string("vm")) < 0 ||
	    json_object_object_add(o, "vm_uuid", json_object_new_string(r->uuid)) < 0 ||
	    json_object_object_add(o, "name", json_object_new_string(r->name)) < 0 ||
	    json_object_object_add(o, "state", json_object_new_string(vm_state_name(r->state))) < 0 ||
	    (r->vtpm_dir && json_object_object_add(o, "vtpm_dir", json_object_new_string(r->vtpm_dir)) < 0)) {
		json_object_put(o);
		return NULL;
	}
	return o;
}

int vm_report_pending(struct vm_map *m, const char *socket, bool *unreachable)
{
	struct vm_row *rows = NULL;
	size_t n = 0, left;
	int r;

	r = vm_map_list(m, true, &rows, &n);
	if (r < 0)
		return r;
	left = n;
	for (size_t i = 0; i < n; i++) {
		struct json_object *req = vm_report_request(&rows[i]), *ans = NULL;

		if (!req) {
			r = kq_err(-ENOMEM, "out of memory");
			break;
		}
		r = local_call(socket, req, &ans);
		json_object_put(req);
		json_object_put(ans);
		if (r == -EPERM) {
			/* the host agent answered with an error: try the others, this one again later */
			log_warn(MOD, "the host agent refused VM %s (%s): %s", rows[i].uuid, rows[i].name, kq_errmsg());
			continue;
		}
		if (r < 0) {
			/* once per outage: `run` retries every retry_interval */
			log_msg(*unreachable ? LOG_DEBUG : LOG_WARN, MOD, "host agent unreachable, %zu VM change(s) wait: %s",
				left, kq_errmsg());
			*unreachable = true;
			break;
		}
		if (*unreachable)
			log_info(MOD, "the host agent answers again");
		*unreachable = false;
		r = vm_map_mark_reported(m, rows[i].uuid, rows[i].gen);
		if (r < 0) {
			log_error(MOD, "%s", kq_errmsg());
			break;
		}
		log_info(MOD, "reported VM %s (%s): %s", rows[i].uuid, rows[i].name, vm_state_name(rows[i].state));
		left--;
	}
	vm_rows_free(rows, n);
	return r == -ENOMEM ? r : (int)(left > INT32_MAX ? INT32_MAX : left);
}
