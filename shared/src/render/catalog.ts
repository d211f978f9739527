import type { Unit } from '../spec/schema.ts';

/**
 * What the stack knows how to deploy: the accelerator families with their device plugin's
 * resource, the taint that keeps other pods off their nodes, and the instance types each offers
 * (vCPUs, GiB of memory, accelerator devices). A unit whose family or instance type is not here
 * is refused at render/synth time.
 */
export type AcceleratorKind = 'nvidia' | 'neuron';

export interface InstanceShape {
  vcpus: number;
  memoryGiB: number;
  /** GPUs (nvidia.com/gpu) or Neuron devices (aws.amazon.com/neuron). */
  devices: number;
}

export interface AcceleratorFamily {
  accelerator: AcceleratorKind;
  /** What the chip is, for labels and docs. */
  chip: string;
  instanceTypes: Readonly<Record<string, InstanceShape>>;
}

export const ACCELERATORS: Readonly<Record<AcceleratorKind, { resource: string; taintKey: string; image: 'gpu' | 'neuron' }>> = {
  nvidia: { resource: 'nvidia.com/gpu', taintKey: 'nvidia.com/gpu', image: 'gpu' },
  neuron: { resource: 'aws.amazon.com/neuron', taintKey: 'aws.amazon.com/neuron', image: 'neuron' },
};

const shape = (vcpus: number, memoryGiB: number, devices: number): InstanceShape => ({ vcpus, memoryGiB, devices });

export const FAMILIES: Readonly<Record<string, AcceleratorFamily>> = {
  g5: {
    accelerator: 'nvidia',
    chip: 'A10G',
    instanceTypes: {
      'g5.xlarge': shape(4, 16, 1),
      'g5.2xlarge': shape(8, 32, 1),
      'g5.4xlarge': shape(16, 64, 1),
      'g5.8xlarge': shape(32, 128, 1),
      'g5.12xlarge': shape(48, 192, 4),
      'g5.16xlarge': shape(64, 256, 1),
      'g5.24xlarge': shape(96, 384, 4),
      'g5.48xlarge': shape(192, 768, 8),
    },
  },
  g6: {
    accelerator: 'nvidia',
    chip: 'L4',
    instanceTypes: {
      'g6.xlarge': shape(4, 16, 1),
      'g6.2xlarge': shape(8, 32, 1),
      'g6.4xlarge': shape(16, 64, 1),
      'g6.8xlarge': shape(32, 128, 1),
      'g6.12xlarge': shape(48, 192, 4),
      'g6.16xlarge': shape(64, 256, 1),
      'g6.24xlarge': shape(96, 384, 4),
      'g6.48xlarge': shape(192, 768, 8),
    },
  },
  inf2: {
    accelerator: 'neuron',
    chip: 'Inferentia2',
    instanceTypes: {
      'inf2.xlarge': shape(4, 16, 1),
      'inf2.8xlarge': shape(32, 128, 1),
      'inf2.24xlarge': shape(96, 384, 6),
      'inf2.48xlarge': shape(192, 768, 12),
    },
  },
  trn1: {
    accelerator: 'neuron',
    chip: 'Trainium',
    instanceTypes: {
      'trn1.2xlarge': shape(8, 32, 1),
      'trn1.32xlarge': shape(128, 512, 16),
    },
  },
};

/** The model server's task per model repository (the model server's HWAI_TASK). */
export const MODEL_TASKS: Readonly<Record<string, string>> = {
  'stabilityai/stable-diffusion-2-1': 'text-to-image',
  'mistralai/Mistral-7B-Instruct-v0.3': 'text-generation',
  'meta-llama/Llama-3.2-1B': 'text-generation',
  'meta-llama/Llama-3.2-1B-Instruct': 'text-generation',
  'distilbert/distilbert-base-uncased-finetuned-sst-2-english': 'sentiment',
  'google/vit-base-patch16-224': 'image-classification',
  'hustvl/yolos-small': 'object-detection',
};

export function familyOf(unit: Unit): AcceleratorFamily {
  const family = FAMILIES[unit.family];
  if (!family) throw new Error(`unit ${unit.name}: family ${unit.family} is not deployable`);
  return family;
}

export function shapeOf(unit: Unit): InstanceShape {
  const s = familyOf(unit).instanceTypes[unit.instanceType];
  if (!s) throw new Error(`unit ${unit.name}: ${unit.instanceType} is not a ${unit.family} instance type`);
  return s;
}
