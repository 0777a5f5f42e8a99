# Aviary's own infrastructure: the team store, the artifact bucket, the CI role for GitHub's OIDC
# and the approval gate. The functions Aviary releases stay where they are (see
# examples/function for how Terraform and Aviary share one).
#
# Tests in deploy/ parse these files and check them against the code: the table against the
# schema `aviary store init` creates, the CI policy against `aviary iam-policy`, the example's
# ignore_changes against what a release changes.

data "aws_partition" "current" {}
data "aws_region" "current" {}
data "aws_caller_identity" "current" {}

locals {
  partition       = data.aws_partition.current.partition
  region          = data.aws_region.current.name
  account_id      = data.aws_caller_identity.current.account_id
  table_name      = aws_dynamodb_table.store.name
  artifact_bucket = aws_s3_bucket.artifacts.id
  artifact_prefix = trim(var.artifact_prefix, "/")

  read_function_names = length(var.read_function_names) > 0 ? var.read_function_names : var.function_names
}

# The store: the schema of `aviary store init` (store/dynamo.TableInput), and Time to Live on
# the attribute only logged-out sessions carry (store/dynamo.TTLAttribute).
resource "aws_dynamodb_table" "store" {
  name         = var.table_name
  billing_mode = "PAY_PER_REQUEST"
  hash_key     = "pk"
  range_key    = "sk"

  attribute {
    name = "pk"
    type = "S"
  }
  attribute {
    name = "sk"
    type = "S"
  }
  attribute {
    name = "gpk"
    type = "S"
  }
  attribute {
    name = "gsk"
    type = "S"
  }

  global_secondary_index {
    name            = "by-environment"
    hash_key        = "gpk"
    range_key       = "gsk"
    projection_type = "ALL"
  }

  ttl {
    attribute_name = "ttl"
    enabled        = true
  }

  point_in_time_recovery {
    enabled = true
  }

  tags = merge(var.tags, { aviary = "store" })
}

# The artifact bucket: versioned, so that an artifact deleted by mistake can be recovered, and
# with a lifecycle that never expires or archives a current artifact (a rollback reads them).
resource "aws_s3_bucket" "artifacts" {
  bucket = var.artifact_bucket_name
  tags   = var.tags
}

resource "aws_s3_bucket_versioning" "artifacts" {
  bucket = aws_s3_bucket.artifacts.id
  versioning_configuration {
    status = "Enabled"
  }
}

resource "aws_s3_bucket_public_access_block" "artifacts" {
  bucket                  = aws_s3_bucket.artifacts.id
  block_public_acls       = true
  block_public_policy     = true
  ignore_public_acls      = true
  restrict_public_buckets = true
}

resource "aws_s3_bucket_server_side_encryption_configuration" "artifacts" {
  bucket = aws_s3_bucket.artifacts.id
  rule {
    apply_server_side_encryption_by_default {
      sse_algorithm = "AES256"
    }
  }
}

resource "aws_s3_bucket_lifecycle_configuration" "artifacts" {
  bucket     = aws_s3_bucket.artifacts.id
  depends_on = [aws_s3_bucket_versioning.artifacts]

  # Only housekeeping: unfinished uploads, and delete markers with no version left under them.
  # No expiration and no transition of current objects: `aviary doctor` reads this rule as
  # harmless.
  rule {
    id     = "aviary-artifacts"
    status = "Enabled"
    filter {
      prefix = "${local.artifact_prefix}/"
    }
    abort_incomplete_multipart_upload {
      days_after_initiation = 7
    }
    expiration {
      expired_object_delete_marker = true
    }
    dynamic "noncurrent_version_expiration" {
      for_each = var.noncurrent_version_expiration_days == null ? [] : [var.noncurrent_version_expiration_days]
      content {
        noncurrent_days = noncurrent_version_expiration.value
      }
    }
  }
}

# The controller: a Lambda function that drives releases on a schedule, so that no CI job has
# to stay alive through a release's bakes. It does not exist yet; when it does, its function,
# role (the CI policy's rights) and EventBridge schedule go here.
