# The secrets' containers only. Values never pass through Terraform (so never into its
# state): scripts/set-secret.sh puts them with the AWS CLI, and each function reads them
# at run time through shared/secrets/aws.py, cached with a TTL.

resource "aws_secretsmanager_secret" "this" {
  #checkov:skip=CKV2_AWS_57:Values are third-party API keys rotated by the operator with scripts/set-secret.sh; instances pick a new value up within the cache TTL
  for_each                = var.names
  name                    = "${var.prefix}${each.key}"
  description             = "multiagent secret ${each.key}; set its value with scripts/set-secret.sh"
  kms_key_id              = var.kms_key_arn
  recovery_window_in_days = var.recovery_window_days
  tags                    = var.tags
}
