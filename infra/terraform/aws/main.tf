# One environment on AWS: 24 team functions and the gateway (one Lambda each, each with its
# own role), the DynamoDB state table, the secrets and the key that encrypts all of it.
#
#   client ──HTTPS──▶ gateway Function URL (the only public entry)
#                        │ lambda:Invoke (its role may invoke exactly the team functions)
#                        ▼
#                     team functions × 24 (no URL) ──▶ DynamoDB PREFIX-store, Secrets Manager PREFIX/*
#
# A team that consults another team calls the gateway's URL with a single-use hop credential
# (signed, bound to the team, operation and body; the client's key never travels on a hop),
# which the gateway relays; teams never need rights on each other.

data "aws_caller_identity" "current" {}
data "aws_partition" "current" {}

locals {
  prefix         = "${var.name_prefix}-${var.environment}"
  tags           = merge(var.tags, { app = "multiagent", environment = var.environment })
  team_names     = sort(keys(var.teams))
  function_names = { for team in local.team_names : team => "${local.prefix}-${team}" }
  gateway_name   = "${local.prefix}-gateway"
  account_id     = data.aws_caller_identity.current.account_id
  partition      = data.aws_partition.current.partition
  lambda_arn     = "arn:${local.partition}:lambda:${var.region}:${local.account_id}:function"
  package_sha256 = filebase64sha256(var.package_path)
  package        = { s3_bucket = aws_s3_bucket.artifacts.id, s3_key = aws_s3_object.package.key, sha256 = local.package_sha256 }
  secret_names   = ["anthropic-api-key", "internal-signing-key", "admin-key", "webhook-secret"]

  team_settings = {
    for team in local.team_names : team => {
      memory_mb            = coalesce(try(var.team_overrides[team].memory_mb, null), var.functions.memory_mb)
      timeout_s            = coalesce(try(var.team_overrides[team].timeout_s, null), var.functions.timeout_s)
      reserved_concurrency = try(var.team_overrides[team].reserved_concurrency, null) != null ? var.team_overrides[team].reserved_concurrency : var.functions.reserved_concurrency
      log_retention_days   = var.log_retention_days
    }
  }
  gateway_timeout_s = min(900, max([for s in values(local.team_settings) : s.timeout_s]...) + 20)

  common_environment = {
    MULTIAGENT_STORE          = "${module.state.store_url}?region=${var.region}"
    MULTIAGENT_SECRETS        = "aws"
    MULTIAGENT_SECRETS_PREFIX = "${local.prefix}/"
    MULTIAGENT_MODEL_PROVIDER = var.model_provider
    MULTIAGENT_LOG_LEVEL      = var.log_level
  }

  # what every function may touch: its data, its secrets, the key that encrypts them
  common_statements = concat(
    [
      {
        sid = "StoreData"
        actions = ["dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem",
          "dynamodb:Query", "dynamodb:BatchGetItem", "dynamodb:BatchWriteItem", "dynamodb:ConditionCheckItem",
        "dynamodb:DescribeTable"]
        resources = module.state.data_plane_resources
      },
      {
        sid       = "ReadOwnSecrets"
        actions   = ["secretsmanager:GetSecretValue"]
        resources = [for name in local.secret_names : module.secrets.arns[name]]
      },
      {
        sid       = "UseDeploymentKey"
        actions   = ["kms:Decrypt", "kms:GenerateDataKey"]
        resources = [aws_kms_key.this.arn]
      },
    ],
    var.model_provider == "bedrock" ? [
      {
        sid     = "InvokeAnthropicModels"
        actions = ["bedrock:InvokeModel", "bedrock:InvokeModelWithResponseStream"]
        resources = ["arn:${local.partition}:bedrock:*::foundation-model/anthropic.*",
        "arn:${local.partition}:bedrock:${var.region}:${local.account_id}:inference-profile/*anthropic.*"]
      },
    ] : [],
  )
}

# --- encryption key -------------------------------------------------------------------------

data "aws_iam_policy_document" "kms" {
  #checkov:skip=CKV_AWS_109:A key policy's Resource "*" means this key only; administration stays with the account
  #checkov:skip=CKV_AWS_111:A key policy's Resource "*" means this key only
  #checkov:skip=CKV_AWS_356:A key policy's Resource "*" means this key only
  statement {
    sid       = "AccountAdministersTheKey"
    actions   = ["kms:*"]
    resources = ["*"]
    principals {
      type        = "AWS"
      identifiers = ["arn:${local.partition}:iam::${local.account_id}:root"]
    }
  }
  statement {
    sid       = "CloudWatchLogsEncryptsTheseLogGroups"
    actions   = ["kms:Encrypt*", "kms:Decrypt*", "kms:ReEncrypt*", "kms:GenerateDataKey*", "kms:Describe*"]
    resources = ["*"]
    principals {
      type        = "Service"
      identifiers = ["logs.${var.region}.amazonaws.com"]
    }
    condition {
      test     = "ArnLike"
      variable = "kms:EncryptionContext:aws:logs:arn"
      values   = ["arn:${local.partition}:logs:${var.region}:${local.account_id}:log-group:/aws/lambda/${local.prefix}-*"]
    }
  }
}

resource "aws_kms_key" "this" {
  description             = "multiagent ${var.environment}: state table, secrets, logs, function environment"
  enable_key_rotation     = true
  deletion_window_in_days = var.kms_deletion_window_days
  policy                  = data.aws_iam_policy_document.kms.json
}

resource "aws_kms_alias" "this" {
  name          = "alias/${local.prefix}"
  target_key_id = aws_kms_key.this.key_id
}

# --- the artifact -----------------------------------------------------------------------------
# The zip is uploaded once and all 25 functions are created from S3: one upload instead of
# 25, and creates run in parallel (the provider serialises direct `filename` uploads).

resource "aws_s3_bucket" "artifacts" {
  #checkov:skip=CKV_AWS_18:Holds only build artifacts written by the deploy; CloudTrail records who wrote them
  #checkov:skip=CKV_AWS_144:Artifacts are rebuilt from the repository; no replica is needed to recover
  #checkov:skip=CKV2_AWS_62:Nothing reacts to artifact uploads
  bucket        = "${local.prefix}-artifacts-${local.account_id}"
  force_destroy = true
}

resource "aws_s3_bucket_versioning" "artifacts" {
  bucket = aws_s3_bucket.artifacts.id
  versioning_configuration {
    status = "Enabled"
  }
}

resource "aws_s3_bucket_server_side_encryption_configuration" "artifacts" {
  bucket = aws_s3_bucket.artifacts.id
  rule {
    apply_server_side_encryption_by_default {
      sse_algorithm     = "aws:kms"
      kms_master_key_id = aws_kms_key.this.arn
    }
    bucket_key_enabled = true
  }
}

resource "aws_s3_bucket_public_access_block" "artifacts" {
  bucket                  = aws_s3_bucket.artifacts.id
  block_public_acls       = true
  block_public_policy     = true
  ignore_public_acls      = true
  restrict_public_buckets = true
}

resource "aws_s3_bucket_lifecycle_configuration" "artifacts" {
  bucket = aws_s3_bucket.artifacts.id
  rule {
    id     = "abort-uploads"
    status = "Enabled"
    filter {}
    abort_incomplete_multipart_upload {
      days_after_initiation = 1
    }
  }
  rule {
    id     = "old-artifacts"
    status = "Enabled"
    filter {
      prefix = "lambda/"
    }
    noncurrent_version_expiration {
      noncurrent_days = 30
    }
  }
}

resource "aws_s3_object" "package" {
  bucket      = aws_s3_bucket.artifacts.id
  key         = "lambda/multiagent-${substr(sha256(local.package_sha256), 0, 16)}.zip"
  source      = var.package_path
  source_hash = local.package_sha256
  kms_key_id  = aws_kms_key.this.arn
  depends_on  = [aws_s3_bucket_server_side_encryption_configuration.artifacts]
}

# --- state and secrets ----------------------------------------------------------------------

module "state" {
  source              = "../modules/aws/state"
  table_prefix        = local.prefix
  kms_key_arn         = aws_kms_key.this.arn
  deletion_protection = var.store.deletion_protection
}

module "secrets" {
  source               = "../modules/aws/secrets"
  prefix               = "${local.prefix}/"
  names                = toset(local.secret_names)
  kms_key_arn          = aws_kms_key.this.arn
  recovery_window_days = var.secret_recovery_window_days
}

# --- functions ------------------------------------------------------------------------------

module "team" {
  source   = "../modules/aws/function"
  for_each = var.teams

  name        = local.function_names[each.key]
  description = "multiagent team ${each.key}: ${substr(each.value.description, 0, 200)}"
  handler     = "functions.team.main.handler"
  package     = local.package
  settings    = local.team_settings[each.key]
  kms_key_arn = aws_kms_key.this.arn
  environment = merge(local.common_environment, {
    MULTIAGENT_TEAM       = each.key
    MULTIAGENT_DEADLINE_S = tostring(local.team_settings[each.key].timeout_s - 15)
    # consultations go through the public gateway with a single-use hop credential
    MULTIAGENT_TEAM_URLS = jsonencode({ for team in local.team_names : team => module.gateway.url if team != each.key })
  })
  policy_statements = local.common_statements
}

module "gateway" {
  source = "../modules/aws/function"

  name        = local.gateway_name
  description = "multiagent gateway: the public API of every team"
  handler     = "functions.gateway.main.handler"
  package     = local.package
  settings = {
    memory_mb            = var.gateway.memory_mb
    timeout_s            = local.gateway_timeout_s
    reserved_concurrency = var.gateway.reserved_concurrency
    log_retention_days   = var.log_retention_days
  }
  kms_key_arn = aws_kms_key.this.arn
  public_url  = true
  environment = merge(local.common_environment, {
    MULTIAGENT_TEAM_URLS       = jsonencode({ for team in local.team_names : team => "lambda://${local.function_names[team]}" })
    MULTIAGENT_DEADLINE_S      = tostring(local.gateway_timeout_s - 20)
    MULTIAGENT_ALLOWED_ORIGINS = join(",", var.gateway.allowed_origins)
    # a long run (Prefer: respond-async) continues in an asynchronous invoke of the gateway itself
    MULTIAGENT_RUN_CONTINUATION = "lambda:${local.gateway_name}"
  })
  policy_statements = concat(local.common_statements, [
    {
      sid       = "InvokeTeamFunctionsOnly"
      actions   = ["lambda:InvokeFunction"]
      resources = [for team in local.team_names : "${local.lambda_arn}:${local.function_names[team]}"]
    },
    {
      sid       = "ContinueLongRunsInItself"
      actions   = ["lambda:InvokeFunction"]
      resources = ["${local.lambda_arn}:${local.gateway_name}"]
    },
  ])
}

# Alarms over the Embedded Metric Format lines every function writes (errors by problem
# type, p95 latency per team, budget refusals).
module "observability" {
  source      = "../modules/aws/observability"
  name_prefix = local.prefix
  teams       = local.team_names
}
