export * from "./brands";
export * from "./receipts";
export * from "./ledger";
export * from "./links";
export * from "./callbacks";
export * from "./imports";
export * from "./keys";
export * from "./meta";
