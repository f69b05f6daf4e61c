/* SPDX-License-Identifier: Apache-2.0 */
/*
 * What libvirt's events and hook calls do to a VM's state in the map. The
 * host agent vouches for (and certifies vTPMs of) VMs that are defined,
 * running or migrating_in here, so the rules lean on one question: is the
 * VM, and its vTPM, on this host now?
 */
#include "vtpm-mgr.h"

#include <string.h>

#include <libvirt/libvirt.h>

static const char *const names[] = {
	[VM_NONE] = "none",
	[VM_DEFINED] = "defined",
	[VM_RUNNING] = "running",
	[VM_STOPPED] = "stopped",
	[VM_UNDEFINED] = "undefined",
	[VM_MIGRATING_IN] = "migrating_in",
	[VM_MIGRATED_OUT] = "migrated_out",
};

const char *vm_state_name(enum vm_state s)
{
	return (size_t)s < ARRAY_SIZE(names) ? names[s] : "none";
}

int vm_state_from_name(const char *name, enum vm_state *ret)
{
	for (size_t i = VM_DEFINED; i < ARRAY_SIZE(names); i++)
		if (name && strcmp(name, names[i]) == 0) {
			*ret = (enum vm_state)i;
			return 0;
		}
	return kq_err(-EINVAL, "'%.32s' is not a VM state", name ? name : "");
}

static bool is_running(enum vm_state s)
{
	return s == VM_RUNNING || s == VM_MIGRATING_IN;
}

enum vm_state vm_state_after_event(enum vm_state cur, int event, int detail, int persistent)
{
	switch (event) {
	case VIR_DOMAIN_EVENT_DEFINED:
		/* a new or changed definition; redefining a running domain leaves it running */
		return is_running(cur) ? cur : VM_DEFINED;
	case VIR_DOMAIN_EVENT_UNDEFINED:
		/* a rename is an UNDEFINED and a DEFINED of the same UUID: keep the row */
		if (detail == VIR_DOMAIN_EVENT_UNDEFINED_RENAMED)
			return cur;
		/* an undefined running domain turns transient and keeps running */
		return is_running(cur) ? cur : VM_UNDEFINED;
	case VIR_DOMAIN_EVENT_STARTED:
		/* the destination's qemu starts paused and receives the migration */
		return detail == VIR_DOMAIN_EVENT_STARTED_MIGRATED ? VM_MIGRATING_IN : VM_RUNNING;
	case VIR_DOMAIN_EVENT_RESUMED:
		/* the end of an incoming migration, or a source resuming after a failed one */
		return VM_RUNNING;
	case VIR_DOMAIN_EVENT_STOPPED:
		if (detail == VIR_DOMAIN_EVENT_STOPPED_MIGRATED)
			return VM_MIGRATED_OUT;
		/* a transient domain is gone once it stops, and libvirt removes its vTPM */
		return persistent == 0 ? VM_UNDEFINED : VM_STOPPED;
	default:
		/*
		 * SHUTDOWN says the guest powered off, but with on_poweroff=restart
		 * (a "fake reboot") the domain goes on running without a STARTED
		 * event: only STOPPED stops it. SUSPENDED, PMSUSPENDED, CRASHED
		 * (on_crash=preserve) keep the domain and its vTPM on this host.
		 */
		return cur;
	}
}

enum vm_state vm_state_after_hook(enum vm_state cur, const char *op, const char *subop)
{
	bool begin = subop && strcmp(subop, "begin") == 0, end = subop && strcmp(subop, "end") == 0;

	if (!op)
		return cur;
	/*
	 * prepare/begin runs before libvirt starts swtpm (and swtpm_setup, which
	 * asks for the EK certificate): the VM must be known by then. On a
	 * migration's destination migrate/begin came first: keep migrating_in.
	 */
	if ((strcmp(op, "prepare") == 0 || strcmp(op, "start") == 0) && begin)
		return cur == VM_MIGRATING_IN ? cur : VM_DEFINED;
	if (strcmp(op, "started") == 0 && begin)
		return VM_RUNNING;
	/* libvirtd restarted and found the domain running, or attached to a foreign qemu */
	if ((strcmp(op, "reconnect") == 0 || strcmp(op, "attach") == 0) && begin)
		return VM_RUNNING;
	if (strcmp(op, "migrate") == 0 && begin)
		return VM_MIGRATING_IN;
	/*
	 * The source of a migration also runs stopped/end and release/end; the
	 * hook cannot tell that from a plain stop, the events can: keep
	 * migrated_out (and undefined) rather than claim the VM again.
	 */
	if ((strcmp(op, "stopped") == 0 || strcmp(op, "release") == 0) && end)
		return cur == VM_MIGRATED_OUT || cur == VM_UNDEFINED ? cur : VM_STOPPED;
	return cur; /* restore/begin, start/end, unknown future operations */
}

enum vm_state vm_state_after_listing(enum vm_state cur, bool active, bool paused)
{
	if (active)
		return cur == VM_MIGRATING_IN && paused ? cur : VM_RUNNING;
	if (cur == VM_STOPPED || cur == VM_MIGRATED_OUT)
		return cur;
	return VM_DEFINED;
}
