import { cleanup, run } from './action/main';
import { isPost } from './action/state';

void (isPost ? cleanup() : run());
