# The state store's table, exactly as shared/store/dynamodb.py's init() would create it:
# one table PREFIX-store, key (pk, sk), the sparse index gsi1 (gsi1pk, gsi1sk, projection
# ALL) used to list tenants, TTL on the numeric attribute `ttl` (epoch seconds),
# on-demand billing. Terraform adds what init() does not: point-in-time recovery,
# encryption with the deployment's key and deletion protection.

resource "aws_dynamodb_table" "store" {
  name                        = "${var.table_prefix}-store"
  billing_mode                = "PAY_PER_REQUEST"
  hash_key                    = "pk"
  range_key                   = "sk"
  deletion_protection_enabled = var.deletion_protection
  tags                        = var.tags

  attribute {
    name = "pk"
    type = "S"
  }
  attribute {
    name = "sk"
    type = "S"
  }
  attribute {
    name = "gsi1pk"
    type = "S"
  }
  attribute {
    name = "gsi1sk"
    type = "S"
  }

  global_secondary_index {
    name            = "gsi1"
    hash_key        = "gsi1pk"
    range_key       = "gsi1sk"
    projection_type = "ALL"
  }

  ttl {
    attribute_name = "ttl"
    enabled        = true
  }

  # continuous backups: restore to any second of the last 35 days (always on)
  point_in_time_recovery {
    enabled = true
  }

  server_side_encryption {
    enabled     = true
    kms_key_arn = var.kms_key_arn
  }
}
