// Example parameters: identifiers only. Nothing secret belongs here (secrets are created inside
// Azure and read as Key Vault references); tests/contracts checks it.
using './main.bicep'

param environmentName = 'dev'
param jwtIssuer = 'https://login.microsoftonline.com/00000000-0000-0000-0000-000000000000/v2.0'
param jwtAudience = 'api://contoso-orders'
param spaClientId = '00000000-0000-0000-0000-000000000000'
param spaScope = 'openid profile api://contoso-orders/orders.readwrite'
param sqlAdminLogin = 'contoso-orders-sql-admins'
param sqlAdminObjectId = '00000000-0000-0000-0000-000000000000'
param sqlAdminPrincipalType = 'Group'
// Set on the second run, after `az acr build` (README):
// param hubImage = '<registry>.azurecr.io/signalr-hub:<tag>'
