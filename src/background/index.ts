// The service worker only wires; each registerX() lives in its own module.
import { registerDescribe } from './describe';
import { registerInstallWatch } from './install-watch';
import { registerLabelCounts } from './label-counts';
import { registerOnboarding } from './onboarding';
import { registerRouter } from './router';
import { registerSettings } from './settings-store';
import { registerTestHooks } from './test-hooks';

registerSettings();
const cache = registerRouter();
registerDescribe();
registerLabelCounts();
registerOnboarding();
registerInstallWatch(cache);
// Compiled out of release builds: __TEST__ is a build-time false there, and the hooks module is tree-shaken.
if (__TEST__) registerTestHooks(cache);
