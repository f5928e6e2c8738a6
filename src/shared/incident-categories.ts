/**
 * The incident categories (docs/design.md#event-types, `incident.reported`). Kept free of any import so the tray's windows can load
 * it as it is.
 */
export const INCIDENT_CATEGORIES = ['suspicious_email', 'malware', 'unauthorized_access', 'data_leak', 'loss_theft', 'other'] as const;
export type IncidentCategory = (typeof INCIDENT_CATEGORIES)[number];
