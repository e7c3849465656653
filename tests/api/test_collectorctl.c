#include "cdtest.h"
int main(void)
{
    return 0;
}
