package lambdafleet

// What a release changes on a function and its alias, named as the Terraform AWS provider names
// the attributes: the rest of the function (role, memory, environment, runtime, VPC...) and the
// alias's existence belong to whoever created them (Terraform, CloudFormation, the console).
//
// The Terraform module under deploy/terraform puts exactly these in its example's
// `lifecycle { ignore_changes = [...] }`, and a test there checks it, so that `terraform apply`
// never undoes a release and Aviary never fights Terraform.

// FunctionIgnoreChanges are aws_lambda_function's code attributes. Publish's
// UpdateFunctionCode points the function at an artifact (S3Bucket and S3Key, no object version)
// and so changes its CodeSha256, which the provider reads back into source_code_hash: without
// ignoring them, the next apply would put the code of the Terraform configuration (filename or
// its s3_* location) back into $LATEST. `publish` is not among them: Aviary publishes versions
// itself, whatever the attribute says, and never changes it (keep it false in Terraform, so that
// Terraform's own configuration changes do not publish versions Aviary did not make).
func FunctionIgnoreChanges() []string {
	return []string{"filename", "s3_bucket", "s3_key", "s3_object_version", "source_code_hash"}
}

// AliasIgnoreChanges are aws_lambda_alias's attributes Aviary moves: the version the alias
// serves (UpdateAlias's FunctionVersion, at promotion and rollback) and the canary's weights
// (its RoutingConfig, at every step).
func AliasIgnoreChanges() []string {
	return []string{"function_version", "routing_config"}
}

// ConfigurationIgnoreChanges are aws_lambda_function's attributes a release changes when the
// manifest gives the function a `configuration:` block: Aviary then owns them (Publish's
// UpdateFunctionConfiguration sets environment, memory, timeout and layers; its
// UpdateFunctionCode sets the architecture), so Terraform must ignore them too, or the next apply
// would put back the configuration of the version before. A function without the block keeps
// them with Terraform. They are the Terraform names of what [release.Settings] manages, in the
// order of [release.Settings.Fields].
func ConfigurationIgnoreChanges() []string {
	return []string{"environment", "memory_size", "timeout", "layers", "architectures"}
}

// configurationAttribute is the Terraform attribute of each field a configuration block names.
var configurationAttribute = map[string]string{
	"environment": "environment", "memory": "memory_size", "timeout": "timeout", "layers": "layers", "architectures": "architectures",
}

// ConfigurationAttribute is the aws_lambda_function attribute of a configuration block's field
// (as the manifest names it: environment, memory, timeout, layers, architectures).
func ConfigurationAttribute(field string) string { return configurationAttribute[field] }
