// The emulator's table of resources per cloud (emulator/resources.ts) is a deliberate copy of the
// broker's (src/clouds.ts): the emulator never imports src/. This keeps the copy true.
import { describe, expect, it } from 'vitest'
import { CLOUD_RESOURCES, EMULATOR_CLOUDS } from '../../emulator/resources.js'
import { CLOUD_NAMES, CLOUDS } from '../../src/clouds.js'

describe("the emulator's resources", () => {
  it('name the same clouds as the broker', () => {
    expect([...EMULATOR_CLOUDS]).toEqual([...CLOUD_NAMES])
  })

  it.each(CLOUD_NAMES)('are the broker’s resource identifiers in %s, no more, no fewer', (cloud) => {
    expect({ ...CLOUD_RESOURCES[cloud] }).toEqual({ ...CLOUDS[cloud].resources })
  })
})
