output "store_url" {
  description = "The store, for the manifest's store: or AVIARY_STORE."
  value       = "dynamodb://${aws_dynamodb_table.store.name}"
}

output "table_arn" {
  value = aws_dynamodb_table.store.arn
}

output "artifact_bucket" {
  description = "The manifest's artifacts.bucket."
  value       = aws_s3_bucket.artifacts.id
}

output "artifact_prefix" {
  description = "The manifest's artifacts.prefix."
  value       = local.artifact_prefix
}

output "ci_role_arn" {
  description = "role-to-assume for aws-actions/configure-aws-credentials."
  value       = aws_iam_role.ci.arn
}

output "gate_url" {
  description = "The gate's function URL: AVIARY_URL where releases are deployed (null without a gate)."
  value       = var.gate_zip == null ? null : aws_lambda_function_url.gate[0].function_url
}

output "controller_function_name" {
  description = "The controller's function (null without one): the manifest's `controller: {function: NAME}`, and the gate's AVIARY_CONTROLLER_FUNCTION."
  value       = local.controller == 1 ? aws_lambda_function.controller[0].function_name : null
}
