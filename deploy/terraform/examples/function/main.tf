# A function Terraform creates and Aviary releases: Terraform owns its configuration (role,
# memory, environment, runtime) and the alias's existence; Aviary owns its code and what the
# alias serves. The ignore_changes lists are exactly what a release changes
# (lambdafleet.FunctionIgnoreChanges and AliasIgnoreChanges; a test in deploy/ checks them), so
# `terraform apply` after a release changes nothing, and a release after an apply moves nothing
# back.
#
# A second function, "worker", has a `configuration:` block in aviary.yaml: Aviary then releases
# its environment, memory, timeout, layers and architecture too (canaried like code), and its
# ignore_changes names those as well (lambdafleet.ConfigurationIgnoreChanges).

module "aviary" {
  source = "../.."

  artifact_bucket_name = "shop-artifacts"
  artifact_prefix      = "releases/shop"
  function_names       = ["shop-api-prod", "shop-worker-prod"]
  github_repository    = "example/shop"
  github_environments  = ["production"]
  checks = {
    metrics = true
  }
}

data "aws_iam_policy_document" "lambda_trust" {
  statement {
    effect  = "Allow"
    actions = ["sts:AssumeRole"]
    principals {
      type        = "Service"
      identifiers = ["lambda.amazonaws.com"]
    }
  }
}

resource "aws_iam_role" "api" {
  name               = "shop-api-prod"
  assume_role_policy = data.aws_iam_policy_document.lambda_trust.json
}

resource "aws_lambda_function" "api" {
  function_name = "shop-api-prod"
  role          = aws_iam_role.api.arn
  runtime       = "provided.al2023"
  handler       = "bootstrap"
  architectures = ["arm64"]
  memory_size   = 256
  timeout       = 10

  # The first code only: a placeholder the first `aviary deploy` replaces. Aviary publishes the
  # versions; Terraform publishes none.
  filename = "${path.module}/bootstrap.zip"
  publish  = false

  lifecycle {
    ignore_changes = [filename, s3_bucket, s3_key, s3_object_version, source_code_hash]
  }
}

# aviary.yaml:
#   functions:
#     worker:
#       dir: worker
#       configuration:
#         environment: {QUEUE_URL: "{{ssm:/shop/worker/queue-url}}"}
#         memory: 512
#         timeout: 60
# Terraform sets the first values; from the first release on, the manifest's win.
resource "aws_lambda_function" "worker" {
  function_name = "shop-worker-prod"
  role          = aws_iam_role.api.arn
  runtime       = "provided.al2023"
  handler       = "bootstrap"
  architectures = ["arm64"]
  memory_size   = 256
  timeout       = 10

  filename = "${path.module}/bootstrap.zip"
  publish  = false

  lifecycle {
    ignore_changes = [
      filename, s3_bucket, s3_key, s3_object_version, source_code_hash,
      environment, memory_size, timeout, layers, architectures,
    ]
  }
}

resource "aws_lambda_alias" "worker_live" {
  name             = "live"
  function_name    = aws_lambda_function.worker.function_name
  function_version = "$LATEST"

  lifecycle {
    ignore_changes = [function_version, routing_config]
  }
}

resource "aws_lambda_alias" "live" {
  name             = "live"
  function_name    = aws_lambda_function.api.function_name
  function_version = "$LATEST" # Aviary pins it to a published version at its first release

  lifecycle {
    ignore_changes = [function_version, routing_config]
  }
}
