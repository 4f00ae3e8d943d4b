export * from "./brands";
export * from "./receipts";
export * from "./ledger";
export * from "./imports";
