/**
 * The errors of the tensor ops: a mistake in what the caller passed, so `user` errors (the CLI prints the message as
 * one line and exits with status 2). Each message names the op, what was wrong and what to do.
 */
import { GradguardError } from '../base/errors.js';

/** Shapes that do not fit the op: wrong rank, dimensions that do not match, a window larger than the input. */
export class ShapeError extends GradguardError {
  static override readonly code: string = 'tensor.shape';
  override readonly name: string = 'ShapeError';
}

/** An argument outside what the op accepts: not a tensor, an unknown option, a value or index out of range. */
export class ArgumentError extends GradguardError {
  static override readonly code: string = 'tensor.argument';
  override readonly name: string = 'ArgumentError';
}
