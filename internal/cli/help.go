package cli

// The environment variables that are not flags: who acts and how locks are named and leased are
// the process's identity, not a choice per command; the secret never belongs on a command line.
// Each command they affect lists them in its --help.

const (
	envActor = `  AVIARY_ACTOR         who acts, in the audit trail (default: user@host)
`
	envLock = `  AVIARY_HOST          this machine's name in lock owners (default: the hostname), for
                       hosts whose name says little, such as CI containers
  AVIARY_LOCK_LEASE    the lease a running release keeps renewing on its lock (default 30s)
`
	envLinks = `  AVIARY_URL           the public address of aviary serve, for approval links and notices
                       (default: the manifest's dashboard:)
  AVIARY_LINK_SECRET   the secret approval links are signed with (the one aviary serve uses);
                       or AVIARY_LINK_SECRET_FILE, a file that holds it
`
	envPreApprove = `  AVIARY_PRE_APPROVE   true or false: overrides the environment's pre_approve
`
	// envDriving is for the commands that may drive a release to its end.
	envDriving = "Environment (besides each flag's AVIARY_* variable):\n" + envActor + envLock + envLinks
)

func (c *deployCmd) Help() string {
	return `Builds every function, reads every alias, takes the environment's lock, records the release
and drives it: publish the changed functions, shift their aliases together step by step, bake and
judge each step, wait at the gate if the environment has one, and promote — or roll the whole
fleet back. Before its first write it checks that the artifact of every version the release would
roll back to is in S3, restoring a missing one from the local cache or the deployed code
(verified); one that cannot be restored stops the deploy (exit 2) unless --allow-unrestorable
(see aviary doctor). Exit 0 promoted (or nothing to deploy), 1 failed, 2 bad input (nothing changed),
3 rolled back, 4 the environment is locked by another release.

` + envDriving + envPreApprove
}

func (c *rollbackCmd) Help() string {
	return `Puts every function of the release back on its previous version, from any phase (a promoted
release too, when it is still the environment's latest). When another process drives the
release, the request goes through the store and that process acts on it; this command follows
it for --wait.

` + envDriving
}

func (c *promoteCmd) Help() string {
	return `Skips the release's remaining steps (with --now, the current bake too) and moves all traffic to
the new versions. At a gate, the promotion is the gate's decision.

` + envDriving
}

func (c *resumeCmd) Help() string {
	return `Continues a release whose process died, from its record: once its lock's lease has run out (or
at once when its owner was a process of this host that is gone).

` + envDriving
}

func (c *planCmd) Help() string {
	return `Builds every function and reads every function and alias, then says what a deploy would change.
It changes nothing. With --detailed-exitcode: 0 nothing to change, 2 changes, 1 error.

Environment (besides each flag's AVIARY_* variable):
` + envPreApprove
}

func (c *linkCmd) Help() string {
	return `Prints fresh signed approve and rollback links for a release waiting at its gate, valid for
--ttl (never past the gate's deadline). Opening a link shows what it will do; only its button
decides.

Environment (besides each flag's AVIARY_* variable):
` + envLinks
}
