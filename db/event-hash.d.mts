export declare const ROW_HASH: 14;
export declare const ROW_SALT: 15;
export declare function canonicalRow(row: readonly unknown[]): string;
export declare function sha256(s: string): string;
export declare function chainHash(content: string, prevHash: string): string;
export declare function newSalt(): string;
export declare function contentHashRow(row: unknown[]): string;
export declare function sealRow(row: unknown[], prevHash: string): string;
