import type { FaultConfig, Faults } from "../Faults.js"

/** @internal */
export const none: FaultConfig = Object.freeze({
  latencyMs: 0,
  errorRate: 0,
  errorStatus: 500,
  hang: false,
  refuse: false
})

const validate = (config: FaultConfig): FaultConfig => {
  if (!Number.isFinite(config.latencyMs) || config.latencyMs < 0) {
    throw new RangeError(`latencyMs must be a finite number >= 0, got ${config.latencyMs}`)
  }
  if (!(config.errorRate >= 0 && config.errorRate <= 1)) {
    throw new RangeError(`errorRate must be within 0..1, got ${config.errorRate}`)
  }
  if (!Number.isInteger(config.errorStatus) || config.errorStatus < 400 || config.errorStatus > 599) {
    throw new RangeError(`errorStatus must be an HTTP error status (400..599), got ${config.errorStatus}`)
  }
  return Object.freeze(config)
}

/**
 * Fault settings that call `onChange(previous, next)` after every change, so a server can release hung requests
 * or drop open sockets.
 *
 * @internal
 */
export const make = (onChange: (previous: FaultConfig, next: FaultConfig) => void): Faults => {
  let current = none
  const update = (next: FaultConfig) => {
    const previous = current
    current = validate(next)
    onChange(previous, current)
  }
  return {
    get current() {
      return current
    },
    set(patch) {
      update({ ...current, ...patch })
    },
    reset() {
      update(none)
    }
  }
}
