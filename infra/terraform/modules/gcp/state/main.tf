# The Firestore database of one environment, laid out as shared/store/firestore.py
# documents it, with point-in-time recovery, scheduled backups and a TTL policy on the
# `ttl` field of every collection group whose documents expire.

resource "google_firestore_database" "this" {
  project                           = var.project
  name                              = var.database
  location_id                       = var.location
  type                              = "FIRESTORE_NATIVE"
  concurrency_mode                  = "OPTIMISTIC"
  app_engine_integration_mode       = "DISABLED"
  point_in_time_recovery_enablement = "POINT_IN_TIME_RECOVERY_ENABLED"
  delete_protection_state           = var.delete_protection ? "DELETE_PROTECTION_ENABLED" : "DELETE_PROTECTION_DISABLED"
  deletion_policy                   = var.delete_protection ? "ABANDON" : "DELETE"
}

resource "google_firestore_field" "ttl" {
  for_each   = var.ttl_collections
  project    = var.project
  database   = google_firestore_database.this.name
  collection = each.key
  field      = "ttl"

  ttl_config {}

  # no single-field index on ttl: nothing queries it, and a timestamp index hot-spots writes
  index_config {}
}

resource "google_firestore_backup_schedule" "daily" {
  project   = var.project
  database  = google_firestore_database.this.name
  retention = "${var.daily_backup_retention_days * 86400}s"

  daily_recurrence {}
}

resource "google_firestore_backup_schedule" "weekly" {
  count     = var.weekly_backup_retention_days > 0 ? 1 : 0
  project   = var.project
  database  = google_firestore_database.this.name
  retention = "${var.weekly_backup_retention_days * 86400}s"

  weekly_recurrence {
    day = "SUNDAY"
  }
}
