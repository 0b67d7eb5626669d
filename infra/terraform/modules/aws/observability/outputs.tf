output "alarm_names" {
  description = "Every alarm this module declares."
  value = concat([for a in aws_cloudwatch_metric_alarm.server_errors : a.alarm_name],
    [for a in aws_cloudwatch_metric_alarm.slow_team : a.alarm_name],
  [for a in aws_cloudwatch_metric_alarm.budget_refusals : a.alarm_name])
}
