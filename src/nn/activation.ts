/** Activation modules (each a thin `Module` over the op of the same name) and a factory by name. */
import { elu, gelu, leakyRelu, relu, selu, sigmoid, softplus, tanh } from '../tensor/ops/elementwise.js';
import type { Tensor } from '../tensor/tensor.js';
import {
  ACTIVATION_LIST,
  ACTIVATIONS,
  type ActivationKey,
  activationKey,
  type ConfigActivation,
} from './activation-names.js';
import { type AnyModule, Module, registerKeepsNothing } from './module.js';

/**
 * An activation module: a `Module` that names its row of the activation table (activation-names.ts), from which the
 * monitor knows which statistics its outputs get (a class without the key is a compile error).
 */
export abstract class Activation extends Module {
  /** Its camelCase name in `ACTIVATIONS`. */
  abstract readonly activation: ActivationKey;
}

/** The activation-table key of a module (null for a module that is not an activation). */
export function activationOf(m: AnyModule): ActivationKey | null {
  return m instanceof Activation ? m.activation : null;
}

/** max(x, 0). */
export class ReLU extends Activation {
  override readonly activation = 'relu';
  forward(x: Tensor): Tensor {
    return relu(x);
  }
}

/** x for x > 0, negativeSlope·x otherwise (default slope 0.01, as PyTorch). */
export class LeakyReLU extends Activation {
  override readonly activation = 'leakyRelu';
  constructor(readonly negativeSlope = 0.01) {
    super();
  }
  forward(x: Tensor): Tensor {
    return leakyRelu(x, this.negativeSlope);
  }
  protected override extraRepr(): string {
    return `negativeSlope=${this.negativeSlope}`;
  }
}

/** x for x > 0, alpha·(eˣ − 1) otherwise (Clevert et al. 2015). */
export class ELU extends Activation {
  override readonly activation = 'elu';
  constructor(readonly alpha = 1) {
    super();
  }
  forward(x: Tensor): Tensor {
    return elu(x, this.alpha);
  }
  protected override extraRepr(): string {
    return `alpha=${this.alpha}`;
  }
}

/** Scaled ELU with the self-normalising constants (Klambauer et al. 2017); pair it with `init.lecunNormal`. */
export class SELU extends Activation {
  override readonly activation = 'selu';
  forward(x: Tensor): Tensor {
    return selu(x);
  }
}

/** x·Φ(x), the exact (erf) GELU (Hendrycks & Gimpel 2016), PyTorch's default. */
export class GELU extends Activation {
  override readonly activation = 'gelu';
  forward(x: Tensor): Tensor {
    return gelu(x);
  }
}

/** 1 / (1 + e⁻ˣ). */
export class Sigmoid extends Activation {
  override readonly activation = 'sigmoid';
  forward(x: Tensor): Tensor {
    return sigmoid(x);
  }
}

/** tanh(x). */
export class Tanh extends Activation {
  override readonly activation = 'tanh';
  forward(x: Tensor): Tensor {
    return tanh(x);
  }
}

/** log(1 + e^(βx))/β, linear where βx > threshold (PyTorch's β = 1, threshold = 20). */
export class Softplus extends Activation {
  override readonly activation = 'softplus';
  constructor(
    readonly beta = 1,
    readonly threshold = 20,
  ) {
    super();
  }
  forward(x: Tensor): Tensor {
    return softplus(x, this.beta, this.threshold);
  }
  protected override extraRepr(): string {
    return `beta=${this.beta}, threshold=${this.threshold}`;
  }
}

/** Returns its input (a placeholder where a layer is optional). */
export class Identity extends Activation {
  override readonly activation = 'identity';
  forward(x: Tensor): Tensor {
    return x;
  }
}

/** Activation names accepted by `activation()` and the model builders (camelCase or kebab-case). */
export type ActivationName = ActivationKey | ConfigActivation | 'linear';

/** A module per activation of the table (activation-names.ts): a row without a factory is a compile error. */
const FACTORIES: Record<ActivationKey, () => Activation> = {
  relu: () => new ReLU(),
  leakyRelu: () => new LeakyReLU(),
  elu: () => new ELU(),
  selu: () => new SELU(),
  gelu: () => new GELU(),
  sigmoid: () => new Sigmoid(),
  tanh: () => new Tanh(),
  softplus: () => new Softplus(),
  identity: () => new Identity(),
};

/**
 * A new activation module by name.
 * @param name e.g. 'relu', 'leakyRelu' (or 'leaky-relu'), 'tanh'
 * @example activation('gelu') // new GELU()
 */
export function activation(name: ActivationName | string): Module {
  const key = activationKey(String(name));
  if (key === undefined) {
    throw new TypeError(`activation(): unknown activation '${name}', please use one of ${ACTIVATION_LIST}`);
  }
  return FACTORIES[key]();
}

/** The `init.calculateGain` name of an activation (for Kaiming/Xavier gains): 'leakyRelu', 'tanh', 'linear', ... */
export function gainName(name: ActivationName | string): string {
  const key = activationKey(String(name));
  return key === undefined ? 'linear' : ACTIVATIONS[key].gain;
}

registerKeepsNothing(ReLU, LeakyReLU, ELU, SELU, GELU, Sigmoid, Tanh, Softplus, Identity);
