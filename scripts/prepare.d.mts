/** Types of scripts/prepare.mjs (for the tests). */
export declare const BUILD_INPUTS: string[];
export declare const NATIVE_INPUTS: string[];
export declare function hashInputs(root: string, inputs: string[], extra?: string): string;
export declare function sourcesHash(root: string): string;
export declare function upToDate(root: string): boolean;
export declare function writeStamp(root: string): void;
export declare function nativeHash(root: string): string;
export declare function nativeUpToDate(root: string): boolean;
export declare function writeNativeStamp(root: string): void;
export declare function invalidate(root: string): void;
export declare function invalidateNative(root: string): void;
