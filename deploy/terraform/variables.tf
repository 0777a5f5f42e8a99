variable "name" {
  description = "A prefix for the names of what the module creates (roles, the gate function)."
  type        = string
  default     = "aviary"
}

variable "table_name" {
  description = "The DynamoDB store's table: AVIARY_STORE=dynamodb://TABLE, the manifest's store: dynamodb://TABLE."
  type        = string
  default     = "aviary"
}

variable "artifact_bucket_name" {
  description = "The artifact bucket (the manifest's artifacts.bucket)."
  type        = string
}

variable "artifact_prefix" {
  description = "The manifest's artifacts.prefix: where Aviary writes artifacts in the bucket. Not empty: CI may write only under it."
  type        = string
  default     = "aviary"
  validation {
    condition     = trim(var.artifact_prefix, "/") != ""
    error_message = "artifact_prefix must not be empty: the CI role may write only under it."
  }
}

variable "noncurrent_version_expiration_days" {
  description = <<-EOT
    Delete noncurrent versions of artifacts this many days after they were replaced or deleted
    (null: keep them). Current artifacts never expire either way. A rollback never reads a
    noncurrent version, but they are what recovers an artifact deleted by mistake, and
    `aviary doctor` warns about a rule that deletes them: leave null unless storage costs matter
    more.
  EOT
  type        = number
  default     = null
}

variable "function_names" {
  description = "The Lambda functions CI releases (their names as the manifest's function_name makes them, for every environment the role deploys to)."
  type        = list(string)
}

variable "read_function_names" {
  description = "The functions whose versions and aliases `aviary doctor` and `aviary gc` read: every environment's sharing the bucket (gc marks all their artifacts). Empty: function_names."
  type        = list(string)
  default     = []
}

variable "checks" {
  description = "What the environments' checks read and invoke, as `aviary iam-policy` covers them: CloudWatch metrics, the functions' /aws/lambda/NAME log groups, the named alarms, smoke invocations of new versions, hook function names."
  type = object({
    metrics = optional(bool, false)
    logs    = optional(bool, false)
    alarms  = optional(list(string), [])
    smoke   = optional(bool, false)
    hooks   = optional(list(string), [])
  })
  default = {}
}

variable "github_repository" {
  description = "The GitHub repository whose workflows may assume the CI role, as OWNER/NAME."
  type        = string
}

variable "github_environments" {
  description = "The GitHub environments whose jobs may assume the CI role (the OIDC token's sub is repo:OWNER/NAME:environment:ENV). Protect them with required reviewers or branch rules."
  type        = list(string)
  default     = ["production"]
}

variable "github_extra_subjects" {
  description = "More OIDC sub claims allowed to assume the CI role, such as \"repo:OWNER/NAME:pull_request\" for plans on pull requests (which then hold the same rights as deploys: prefer an environment)."
  type        = list(string)
  default     = []
}

variable "github_oidc_provider_arn" {
  description = "An existing IAM OIDC provider for token.actions.githubusercontent.com (an account has at most one); null creates it."
  type        = string
  default     = null
}

variable "gate_zip" {
  description = "The built gate (cmd/aviary-gate, zipped bootstrap for provided.al2023); null: no gate."
  type        = string
  default     = null
}

variable "gate_architecture" {
  description = "The gate's architecture, as it was built: arm64 (GOARCH=arm64) or x86_64 (GOARCH=amd64)."
  type        = string
  default     = "arm64"
}

variable "gate_link_secret" {
  description = "AVIARY_LINK_SECRET: the secret the gate's links are signed with, the same as CI's (at least 16 random bytes). It is kept in the Terraform state."
  type        = string
  default     = null
  sensitive   = true
}

variable "gate_admin_token" {
  description = "AVIARY_ADMIN_TOKEN: turns on the dashboard's approve and rollback buttons (null: off)."
  type        = string
  default     = null
  sensitive   = true
}

variable "gate_url_auth_type" {
  description = "The function URL's auth type: NONE (decisions still need signed links; anyone can read the dashboard) or AWS_IAM (behind an authenticating proxy)."
  type        = string
  default     = "NONE"
}

variable "gate_environment" {
  description = "More environment variables for the gate: AVIARY_USER_HEADER, AVIARY_TRUSTED_PROXIES, AVIARY_URL (see cmd/aviary-gate)."
  type        = map(string)
  default     = {}
}

variable "tags" {
  description = "Tags for everything the module creates."
  type        = map(string)
  default     = {}
}

variable "controller_zip" {
  description = "The built controller (cmd/aviary-controller, zipped bootstrap for provided.al2023); null: no controller. It drives detached releases (`aviary deploy --detach`) from a schedule."
  type        = string
  default     = null
}

variable "controller_architecture" {
  description = "The controller's architecture, as it was built: arm64 (GOARCH=arm64) or x86_64 (GOARCH=amd64)."
  type        = string
  default     = "arm64"
}

variable "controller_function_name" {
  description = "The controller's function name: the manifest's `controller: {function: NAME}` (default aviary-controller)."
  type        = string
  default     = "aviary-controller"
}

variable "controller_schedule" {
  description = "The schedule's input, the controller's Event: the service and environment it ticks (null: every release of the store, a Scan)."
  type = object({
    service     = string
    environment = string
  })
  default = null
}

variable "controller_enabled" {
  description = "Whether the controller's schedule runs (false: the schedule is DISABLED; nudges still tick)."
  type        = bool
  default     = true
}
