// Package e2e tells Aviary's stories end to end: the built `aviary` command and its packages drive
// the real AWS SDK over HTTP against the sandbox (and the DynamoDB store against dynalite), as a
// team would against AWS — a fleet released, a faulty canary caught and rolled back, a gate decided
// from a link, a deploy killed after any write and finished by another process, the IAM policy
// checked against every call a release made — plus the fleet and health benchmarks. It has no
// code of its own outside its tests.
package e2e
