# One Lambda function with its own role, log group and (for the gateway only) a public URL.

locals {
  log_group_name = "/aws/lambda/${var.name}"
}

resource "aws_cloudwatch_log_group" "this" {
  name              = local.log_group_name
  retention_in_days = var.settings.log_retention_days
  kms_key_id        = var.kms_key_arn
  tags              = var.tags
}

data "aws_iam_policy_document" "assume" {
  statement {
    sid     = "LambdaAssumesThisRoleOnly"
    actions = ["sts:AssumeRole"]
    principals {
      type        = "Service"
      identifiers = ["lambda.amazonaws.com"]
    }
  }
}

resource "aws_iam_role" "this" {
  name                 = "${var.name}-role"
  description          = "Identity of the ${var.name} function and nothing else."
  assume_role_policy   = data.aws_iam_policy_document.assume.json
  max_session_duration = 3600
  tags                 = var.tags
}

data "aws_iam_policy_document" "this" {
  statement {
    sid       = "OwnLogs"
    actions   = ["logs:CreateLogStream", "logs:PutLogEvents"]
    resources = ["${aws_cloudwatch_log_group.this.arn}:*"]
  }
  statement {
    sid       = "Tracing"
    actions   = ["xray:PutTraceSegments", "xray:PutTelemetryRecords"]
    resources = ["*"] # X-Ray has no resource-level permissions for these two actions
  }
  dynamic "statement" {
    for_each = var.policy_statements
    content {
      sid       = statement.value.sid
      actions   = statement.value.actions
      resources = statement.value.resources
    }
  }
}

resource "aws_iam_role_policy" "this" {
  name   = "${var.name}-least-privilege"
  role   = aws_iam_role.this.id
  policy = data.aws_iam_policy_document.this.json
}

resource "aws_lambda_function" "this" {
  #checkov:skip=CKV_AWS_116:Invoked synchronously only (Function URL, gateway Invoke); a DLQ applies to async invokes
  #checkov:skip=CKV_AWS_117:No VPC: the function reaches only AWS APIs over IAM (DynamoDB, Secrets Manager, Lambda) and the model API
  #checkov:skip=CKV_AWS_272:Code signing needs a Signer profile per account; the zip is built and hashed in CI (scripts/build.sh)
  #checkov:skip=CKV_AWS_115:Reserved concurrency is settings.reserved_concurrency per environment; new accounts have a quota of 10 that any reservation breaks
  function_name                  = var.name
  description                    = var.description
  role                           = aws_iam_role.this.arn
  handler                        = var.handler
  runtime                        = var.runtime
  architectures                  = ["x86_64"]
  s3_bucket                      = var.package.s3_bucket
  s3_key                         = var.package.s3_key
  source_code_hash               = var.package.sha256
  memory_size                    = var.settings.memory_mb
  timeout                        = var.settings.timeout_s
  reserved_concurrent_executions = coalesce(var.settings.reserved_concurrency, -1)
  kms_key_arn                    = var.kms_key_arn
  tags                           = var.tags

  environment {
    variables = var.environment
  }

  tracing_config {
    mode = "Active"
  }

  logging_config {
    log_format = "Text"
    log_group  = aws_cloudwatch_log_group.this.name
  }

  # the role's policy must exist before the first cold start reads a secret
  depends_on = [aws_iam_role_policy.this]
}

resource "aws_lambda_function_url" "this" {
  #checkov:skip=CKV_AWS_258:The gateway is the public API: every route but /health, /openapi.json and the team list checks an API key itself
  count              = var.public_url ? 1 : 0
  function_name      = aws_lambda_function.this.function_name
  authorization_type = "NONE"
}

resource "aws_lambda_permission" "public_url" {
  #checkov:skip=CKV_AWS_301:The public principal is limited to InvokeFunctionUrl with auth type NONE (the gateway's URL)
  count                  = var.public_url ? 1 : 0
  statement_id           = "PublicFunctionUrl"
  action                 = "lambda:InvokeFunctionUrl"
  function_name          = aws_lambda_function.this.function_name
  principal              = "*"
  function_url_auth_type = "NONE"
}
