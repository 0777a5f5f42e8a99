# The controller (cmd/aviary-controller), which drives detached releases from EventBridge
# Scheduler, as `aviary controller install` creates it: the function, one role that Lambda runs
# it with and the schedule invokes it with (exactly `aviary iam-policy --controller`'s rights,
# controller_policy.tf), and a rate(1 minute) schedule whose input is the controller's Event.
# Created when controller_zip names the built function. The gate, when there is one, may nudge
# it (AVIARY_CONTROLLER_FUNCTION; gate.tf grants lambda:InvokeFunction).

locals {
  controller          = var.controller_zip == null ? 0 : 1
  controller_function = var.controller_function_name
  # controller.Event: {"service", "environment"} narrows a tick to one environment of one service.
  controller_input = var.controller_schedule == null ? "{}" : jsonencode({
    service     = var.controller_schedule.service
    environment = var.controller_schedule.environment
  })
}

data "aws_iam_policy_document" "controller_trust" {
  statement {
    effect  = "Allow"
    actions = ["sts:AssumeRole"]
    principals {
      type        = "Service"
      identifiers = ["lambda.amazonaws.com", "scheduler.amazonaws.com"]
    }
  }
}

resource "aws_iam_role" "controller" {
  count              = local.controller
  name               = "${var.name}-controller"
  assume_role_policy = data.aws_iam_policy_document.controller_trust.json
  tags               = var.tags
}

resource "aws_iam_role_policy" "controller" {
  count  = local.controller
  name   = "aviary-controller"
  role   = aws_iam_role.controller[0].id
  policy = data.aws_iam_policy_document.aviary_controller.json
}

resource "aws_lambda_function" "controller" {
  count            = local.controller
  function_name    = local.controller_function
  role             = aws_iam_role.controller[0].arn
  filename         = var.controller_zip
  source_code_hash = filebase64sha256(var.controller_zip)
  runtime          = "provided.al2023"
  handler          = "bootstrap"
  architectures    = [var.controller_architecture]
  timeout          = 60
  memory_size      = 256

  environment {
    variables = {
      AVIARY_STORE = "dynamodb://${aws_dynamodb_table.store.name}"
    }
  }

  tags       = var.tags
  depends_on = [aws_iam_role_policy.controller]
}

resource "aws_scheduler_schedule" "controller" {
  count               = local.controller
  name                = "${var.name}-controller"
  schedule_expression = "rate(1 minute)"
  state               = var.controller_enabled ? "ENABLED" : "DISABLED"

  flexible_time_window {
    mode = "OFF"
  }

  target {
    arn      = aws_lambda_function.controller[0].arn
    role_arn = aws_iam_role.controller[0].arn
    input    = local.controller_input
  }
}
