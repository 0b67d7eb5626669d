# One environment on Google Cloud: 24 team services and the gateway on Cloud Run (one
# service account each), the Firestore database, the Secret Manager secrets and the image
# repository.
#
#   client ──HTTPS──▶ gateway service (the only one invokable by allUsers)
#                        │ Google ID token of the gateway's service account
#                        ▼ (the only member with run.invoker on a team)
#                     team services × 24 ──▶ Firestore PREFIX-ENV, Secret Manager PREFIX-ENV-*
#
# A team that consults another team calls the gateway's URL with a single-use hop credential
# (signed, bound to the team, operation and body; the client's key never travels on a hop),
# which the gateway relays; teams never need rights on each other.

data "google_project" "this" {
  project_id = var.project
}

locals {
  prefix        = "${var.name_prefix}-${var.environment}"
  labels        = merge(var.labels, { app = "multiagent", environment = var.environment })
  team_names    = sort(keys(var.teams))
  service_names = { for team in local.team_names : team => "${local.prefix}-${team}" }
  gateway_name  = "${local.prefix}-gateway"
  # Cloud Run's deterministic URL: known before the service exists, so teams can point
  # consultations at the gateway without a dependency cycle
  gateway_url  = "https://${local.gateway_name}-${data.google_project.this.number}.${var.region}.run.app"
  secret_names = ["anthropic-api-key", "internal-signing-key", "admin-key", "webhook-secret"]

  team_settings = {
    for team in local.team_names : team => {
      min_instances = coalesce(try(var.team_overrides[team].min_instances, null), var.functions.min_instances)
      max_instances = coalesce(try(var.team_overrides[team].max_instances, null), var.functions.max_instances)
      concurrency   = coalesce(try(var.team_overrides[team].concurrency, null), var.functions.concurrency)
      timeout_s     = coalesce(try(var.team_overrides[team].timeout_s, null), var.functions.timeout_s)
      memory        = coalesce(try(var.team_overrides[team].memory, null), var.functions.memory)
      cpu           = coalesce(try(var.team_overrides[team].cpu, null), var.functions.cpu)
    }
  }
  gateway_timeout_s = min(3600, max([for s in values(local.team_settings) : s.timeout_s]...) + 60)

  common_environment = {
    MULTIAGENT_STORE           = module.state.store_url
    MULTIAGENT_SECRETS         = "gcp"
    MULTIAGENT_SECRETS_PROJECT = var.project
    MULTIAGENT_SECRETS_PREFIX  = "${local.prefix}-"
    MULTIAGENT_MODEL_PROVIDER  = var.model_provider
    MULTIAGENT_LOG_LEVEL       = var.log_level
    GOOGLE_CLOUD_PROJECT       = var.project
  }

  # every function: its own database (condition on the database name) and, with Vertex, the model
  project_roles = concat(
    [{ role = "roles/datastore.user", condition = module.state.iam_condition }],
    var.model_provider == "vertex" ? [{ role = "roles/aiplatform.user", condition = null }] : [],
  )
}

resource "google_project_service" "apis" {
  for_each           = toset(["run.googleapis.com", "firestore.googleapis.com", "secretmanager.googleapis.com", "artifactregistry.googleapis.com", "iamcredentials.googleapis.com", "cloudbuild.googleapis.com", "cloudtasks.googleapis.com"])
  project            = var.project
  service            = each.key
  disable_on_destroy = false
}

# --- the image repository (bootstrapped once by scripts/deploy.sh before the first push) --------

resource "google_artifact_registry_repository" "images" {
  #checkov:skip=CKV_GCP_84:The image holds code and public dependencies only (no secrets, no data); Google-managed encryption suffices
  project       = var.project
  location      = var.region
  repository_id = local.prefix
  format        = "DOCKER"
  description   = "multiagent ${var.environment}: the one image every function runs"

  cleanup_policies {
    id     = "keep-recent"
    action = "KEEP"
    most_recent_versions {
      keep_count = 10
    }
  }
  cleanup_policies {
    id     = "delete-old"
    action = "DELETE"
    condition {
      older_than = "2592000s"
    }
  }

  depends_on = [google_project_service.apis]
}

# --- state and secrets -----------------------------------------------------------------------

module "state" {
  source                       = "../modules/gcp/state"
  project                      = var.project
  database                     = local.prefix
  location                     = var.store.location
  delete_protection            = var.store.delete_protection
  daily_backup_retention_days  = var.store.daily_backup_retention_days
  weekly_backup_retention_days = var.store.weekly_backup_retention_days
  depends_on                   = [google_project_service.apis]
}

module "secrets" {
  source     = "../modules/gcp/secrets"
  project    = var.project
  prefix     = "${local.prefix}-"
  names      = toset(local.secret_names)
  depends_on = [google_project_service.apis]
}

# --- long runs: a run started with "Prefer: respond-async" continues in a Cloud Tasks call to
# POST /v1/runs/{id}/resume on the gateway (authenticated by the run's signed envelope) ------

resource "google_cloud_tasks_queue" "runs" {
  project  = var.project
  location = var.region
  name     = "${local.prefix}-runs"

  retry_config {
    max_attempts  = 5
    min_backoff   = "5s"
    max_backoff   = "300s"
    max_doublings = 4
  }

  depends_on = [google_project_service.apis]
}

resource "google_cloud_tasks_queue_iam_member" "gateway_enqueues_runs" {
  project  = var.project
  location = var.region
  name     = google_cloud_tasks_queue.runs.name
  role     = "roles/cloudtasks.enqueuer"
  member   = module.gateway.service_account_member
}

# --- services -------------------------------------------------------------------------------

module "gateway" {
  source      = "../modules/gcp/function"
  project     = var.project
  region      = var.region
  name        = local.gateway_name
  description = "multiagent gateway: the public API of every team"
  image       = var.image
  public      = true
  settings = {
    min_instances = var.gateway.min_instances
    max_instances = var.gateway.max_instances
    concurrency   = var.gateway.concurrency
    timeout_s     = local.gateway_timeout_s
    memory        = var.gateway.memory
    cpu           = var.gateway.cpu
  }
  environment = merge(local.common_environment, {
    MULTIAGENT_TEAM_URLS        = jsonencode({ for team, m in module.team : team => m.url })
    MULTIAGENT_TEAM_AUTH        = "google-id-token"
    MULTIAGENT_DEADLINE_S       = tostring(local.gateway_timeout_s - 60)
    MULTIAGENT_ALLOWED_ORIGINS  = join(",", var.gateway.allowed_origins)
    MULTIAGENT_RUN_CONTINUATION = "cloudtasks:${google_cloud_tasks_queue.runs.id}@${local.gateway_url}"
  })
  secret_ids          = module.secrets.ids
  project_roles       = local.project_roles
  deletion_protection = var.environment == "prod"
  labels              = { function = "gateway" }
}

module "team" {
  source      = "../modules/gcp/function"
  for_each    = var.teams
  project     = var.project
  region      = var.region
  name        = local.service_names[each.key]
  description = "multiagent team ${each.key}: ${substr(each.value.description, 0, 200)}"
  image       = var.image
  settings    = local.team_settings[each.key]
  invokers    = [module.gateway.service_account_member]
  environment = merge(local.common_environment, {
    MULTIAGENT_TEAM       = each.key
    MULTIAGENT_DEADLINE_S = tostring(local.team_settings[each.key].timeout_s - 15)
    MULTIAGENT_TEAM_URLS  = jsonencode({ for team in local.team_names : team => local.gateway_url if team != each.key })
  })
  secret_ids          = module.secrets.ids
  project_roles       = local.project_roles
  deletion_protection = var.environment == "prod"
  labels              = { function = each.key }
}

# Log-based metrics and alert policies over the structured log line every function
# writes per operation (errors by problem type, latency per team, budget refusals).
module "observability" {
  source      = "../modules/gcp/observability"
  project_id  = var.project
  name_prefix = local.prefix
}
