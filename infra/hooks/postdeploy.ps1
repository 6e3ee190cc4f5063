# azd postdeploy hook, Windows (azure.yaml `windows:`, PowerShell 7 `pwsh`); postdeploy.sh is its POSIX
# twin and the two make the same CLI call (tests/infra/test_hooks.py compares them). In the public
# delivery mode, create the Key Vault system topic's subscription to the Event Grid trigger function now
# that the function exists (Event Grid validates the endpoint when the subscription is created, so it
# cannot be part of `azd provision`). The private mode's queue subscription is part of infra/main.bicep.
# azd exports the outputs of infra/main.bicep as environment variables. Every CLI call names the
# subscription explicitly, so the hook never acts on whatever subscription `az` defaults to.
$ErrorActionPreference = 'Stop'

$mode = if ($env:EVENT_DELIVERY_MODE) { $env:EVENT_DELIVERY_MODE } else { 'private' }
if ($mode -ne 'public') {
  Write-Host 'postdeploy: private delivery mode, the queue subscription was provisioned with the infrastructure'
  exit 0
}

foreach ($name in @('AZURE_SUBSCRIPTION_ID', 'AZURE_RESOURCE_GROUP', 'EVENTGRID_SYSTEM_TOPIC_NAME', 'FUNCTION_APP_NAME',
    'HOST_STORAGE_ACCOUNT_ID', 'DEAD_LETTER_CONTAINER_NAME', 'MAX_DELIVERY_ATTEMPTS', 'EVENT_TTL_MINUTES')) {
  if (-not [Environment]::GetEnvironmentVariable($name)) {
    [Console]::Error.WriteLine("postdeploy: $name is not set; run 'azd provision' first")
    exit 1
  }
}

$template = Join-Path $PSScriptRoot '../modules/event-subscription-function.bicep'

Write-Host "postdeploy: subscribing $($env:FUNCTION_APP_NAME)/on_secret_near_expiry to $($env:EVENTGRID_SYSTEM_TOPIC_NAME)"
az deployment group create `
  --subscription "$env:AZURE_SUBSCRIPTION_ID" `
  --name "rotation-function-subscription" `
  --resource-group "$env:AZURE_RESOURCE_GROUP" `
  --template-file "$template" `
  --parameters `
    systemTopicName="$env:EVENTGRID_SYSTEM_TOPIC_NAME" `
    functionAppName="$env:FUNCTION_APP_NAME" `
    storageAccountId="$env:HOST_STORAGE_ACCOUNT_ID" `
    deadLetterContainerName="$env:DEAD_LETTER_CONTAINER_NAME" `
    maxDeliveryAttempts="$env:MAX_DELIVERY_ATTEMPTS" `
    eventTimeToLiveInMinutes="$env:EVENT_TTL_MINUTES" `
  --output none
# A native command's failure does not stop the script by itself: check its exit code.
if ($LASTEXITCODE -ne 0) {
  [Console]::Error.WriteLine("postdeploy: az deployment group create failed with exit code $LASTEXITCODE")
  exit $LASTEXITCODE
}
