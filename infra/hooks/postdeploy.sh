#!/bin/sh
# azd postdeploy hook, POSIX shells (azure.yaml `posix:`); postdeploy.ps1 is its Windows twin and the two
# make the same CLI call (tests/infra/test_hooks.py compares them). In the public delivery mode, create
# the Key Vault system topic's subscription to the Event Grid trigger function now that the function
# exists (Event Grid validates the endpoint when the subscription is created, so it cannot be part of
# `azd provision`). The private mode's queue subscription is part of infra/main.bicep: nothing to do.
# azd exports the outputs of infra/main.bicep as environment variables. Every CLI call names the
# subscription explicitly, so the hook never acts on whatever subscription `az` defaults to.
set -eu

if [ "${EVENT_DELIVERY_MODE:-private}" != "public" ]; then
  echo "postdeploy: private delivery mode, the queue subscription was provisioned with the infrastructure"
  exit 0
fi

for name in AZURE_SUBSCRIPTION_ID AZURE_RESOURCE_GROUP EVENTGRID_SYSTEM_TOPIC_NAME FUNCTION_APP_NAME \
  HOST_STORAGE_ACCOUNT_ID DEAD_LETTER_CONTAINER_NAME MAX_DELIVERY_ATTEMPTS EVENT_TTL_MINUTES; do
  eval "value=\${$name:-}"
  if [ -z "$value" ]; then
    echo "postdeploy: $name is not set; run 'azd provision' first" >&2
    exit 1
  fi
done

here=$(CDPATH= cd -- "$(dirname -- "$0")" && pwd)

echo "postdeploy: subscribing ${FUNCTION_APP_NAME}/on_secret_near_expiry to ${EVENTGRID_SYSTEM_TOPIC_NAME}"
az deployment group create \
  --subscription "${AZURE_SUBSCRIPTION_ID}" \
  --name "rotation-function-subscription" \
  --resource-group "${AZURE_RESOURCE_GROUP}" \
  --template-file "${here}/../modules/event-subscription-function.bicep" \
  --parameters \
    systemTopicName="${EVENTGRID_SYSTEM_TOPIC_NAME}" \
    functionAppName="${FUNCTION_APP_NAME}" \
    storageAccountId="${HOST_STORAGE_ACCOUNT_ID}" \
    deadLetterContainerName="${DEAD_LETTER_CONTAINER_NAME}" \
    maxDeliveryAttempts="${MAX_DELIVERY_ATTEMPTS}" \
    eventTimeToLiveInMinutes="${EVENT_TTL_MINUTES}" \
  --output none
