#!/bin/sh
# azd postdeploy hook. In the public delivery mode, create the Key Vault system topic's subscription to
# the Event Grid trigger function now that the function exists (Event Grid validates the endpoint when
# the subscription is created, so it cannot be part of `azd provision`). The private mode's queue
# subscription is part of infra/main.bicep, so there is nothing to do there.
# azd exports the outputs of infra/main.bicep as environment variables.
set -eu

if [ "${EVENT_DELIVERY_MODE:-private}" != "public" ]; then
  echo "postdeploy: private delivery mode, the queue subscription was provisioned with the infrastructure"
  exit 0
fi

here=$(CDPATH= cd -- "$(dirname -- "$0")" && pwd)

echo "postdeploy: subscribing ${FUNCTION_APP_NAME}/on_secret_near_expiry to ${EVENTGRID_SYSTEM_TOPIC_NAME}"
az deployment group create \
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
