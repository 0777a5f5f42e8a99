# The approval gate and dashboard (cmd/aviary-gate) as a Lambda function behind a function URL.
# Created when gate_zip names the built function.

locals {
  gate = var.gate_zip == null ? 0 : 1
}

data "aws_iam_policy_document" "gate_trust" {
  statement {
    effect  = "Allow"
    actions = ["sts:AssumeRole"]
    principals {
      type        = "Service"
      identifiers = ["lambda.amazonaws.com"]
    }
  }
}

resource "aws_iam_role" "gate" {
  count              = local.gate
  name               = "${var.name}-gate"
  assume_role_policy = data.aws_iam_policy_document.gate_trust.json
  tags               = var.tags
}

resource "aws_iam_role_policy_attachment" "gate_logs" {
  count      = local.gate
  role       = aws_iam_role.gate[0].name
  policy_arn = "arn:${local.partition}:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole"
}

# The gate's rights on the store, as cmd/aviary-gate lists them; and, with the controller,
# lambda:InvokeFunction on it: after a decision the gate nudges it (AVIARY_CONTROLLER_FUNCTION).
data "aws_iam_policy_document" "gate" {
  statement {
    sid       = "TheStore"
    effect    = "Allow"
    actions   = ["dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:Query", "dynamodb:Scan"]
    resources = [aws_dynamodb_table.store.arn, "${aws_dynamodb_table.store.arn}/index/*"]
  }
  dynamic "statement" {
    for_each = local.controller == 1 ? [1] : []
    content {
      sid       = "NudgeTheController"
      effect    = "Allow"
      actions   = ["lambda:InvokeFunction"]
      resources = ["arn:${local.partition}:lambda:${local.region}:${local.account_id}:function:${local.controller_function}"]
    }
  }
}

resource "aws_iam_role_policy" "gate" {
  count  = local.gate
  name   = "aviary-gate"
  role   = aws_iam_role.gate[0].id
  policy = data.aws_iam_policy_document.gate.json
}

resource "aws_lambda_function" "gate" {
  count            = local.gate
  function_name    = "${var.name}-gate"
  role             = aws_iam_role.gate[0].arn
  filename         = var.gate_zip
  source_code_hash = filebase64sha256(var.gate_zip)
  runtime          = "provided.al2023"
  handler          = "bootstrap"
  architectures    = [var.gate_architecture]
  timeout          = 30
  memory_size      = 256

  environment {
    # AVIARY_ADMIN_TOKEN only when given: an unset variable is no token.
    variables = { for k, v in merge(var.gate_environment, {
      AVIARY_STORE       = "dynamodb://${aws_dynamodb_table.store.name}"
      AVIARY_LINK_SECRET = var.gate_link_secret
      AVIARY_ADMIN_TOKEN = var.gate_admin_token
      AVIARY_CONTROLLER_FUNCTION = var.controller_zip == null ? null : local.controller_function
    }) : k => v if v != null }
  }

  tags       = var.tags
  depends_on = [aws_iam_role_policy_attachment.gate_logs]
}

resource "aws_lambda_function_url" "gate" {
  count              = local.gate
  function_name      = aws_lambda_function.gate[0].function_name
  authorization_type = var.gate_url_auth_type
}

# Public access to the function URL, as cmd/aviary-gate documents it. Function URLs created since
# October 2025 also need lambda:InvokeFunction granted for calls through the URL (AWS's "Control
# access to Lambda function URLs"; AddPermission's InvokedViaFunctionUrl): not granted here yet,
# because that grant must stay limited to calls through the URL, and which provider version takes
# that flag is unchecked. Add it with the provider you use, or
#   aws lambda add-permission --function-name NAME --statement-id url-invoke \
#     --action lambda:InvokeFunction --principal '*' --invoked-via-function-url
resource "aws_lambda_permission" "gate_url" {
  count                  = var.gate_zip != null && var.gate_url_auth_type == "NONE" ? 1 : 0
  statement_id           = "url"
  action                 = "lambda:InvokeFunctionUrl"
  function_name          = aws_lambda_function.gate[0].function_name
  principal              = "*"
  function_url_auth_type = "NONE"
}
