# One Cloud Run service with its own service account. Public (allUsers) only when
# var.public, which the root sets for the gateway alone; otherwise only var.invokers
# (the gateway's service account, calling with Google ID tokens) may invoke it.

locals {
  # service account ids are 6-30 characters: a readable prefix plus a short hash keeps them unique
  account_id = "${trimsuffix(substr(var.name, 0, 25), "-")}-${substr(sha1(var.name), 0, 4)}"
  invokers   = var.public ? ["allUsers"] : var.invokers
}

resource "google_service_account" "this" {
  project      = var.project
  account_id   = local.account_id
  display_name = var.name
  description  = "Identity of the ${var.name} function and nothing else."
}

resource "google_cloud_run_v2_service" "this" {
  project             = var.project
  location            = var.region
  name                = var.name
  description         = var.description
  ingress             = "INGRESS_TRAFFIC_ALL"
  deletion_protection = var.deletion_protection
  labels              = var.labels

  template {
    service_account                  = google_service_account.this.email
    timeout                          = "${var.settings.timeout_s}s"
    max_instance_request_concurrency = var.settings.concurrency
    execution_environment            = "EXECUTION_ENVIRONMENT_GEN2"

    scaling {
      min_instance_count = var.settings.min_instances
      max_instance_count = var.settings.max_instances
    }

    containers {
      image = var.image

      ports {
        container_port = 8080
      }

      resources {
        limits = {
          cpu    = var.settings.cpu
          memory = var.settings.memory
        }
        cpu_idle          = true
        startup_cpu_boost = true
      }

      dynamic "env" {
        for_each = var.environment
        content {
          name  = env.key
          value = env.value
        }
      }

      startup_probe {
        period_seconds    = 2
        timeout_seconds   = 2
        failure_threshold = 15
        http_get {
          path = "/health"
        }
      }

      liveness_probe {
        period_seconds    = 30
        timeout_seconds   = 5
        failure_threshold = 3
        http_get {
          path = "/health"
        }
      }
    }
  }
}

resource "google_cloud_run_v2_service_iam_member" "invoker" {
  for_each = toset(local.invokers)
  project  = var.project
  location = var.region
  name     = google_cloud_run_v2_service.this.name
  role     = "roles/run.invoker"
  member   = each.value
}

resource "google_secret_manager_secret_iam_member" "access" {
  for_each  = var.secret_ids
  project   = var.project
  secret_id = each.value
  role      = "roles/secretmanager.secretAccessor"
  member    = google_service_account.this.member
}

resource "google_project_iam_member" "roles" {
  for_each = { for r in var.project_roles : r.role => r }
  project  = var.project
  role     = each.value.role
  member   = google_service_account.this.member

  dynamic "condition" {
    for_each = each.value.condition == null ? [] : [each.value.condition]
    content {
      title      = condition.value.title
      expression = condition.value.expression
    }
  }
}
